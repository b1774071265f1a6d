"""A real SMTP server for the email tests (aiosmtpd), on 127.0.0.1 and a free port.

It speaks STARTTLS or TLS from the first byte with a self-signed certificate made here (the
portal trusts it through SMTP_CA_FILE, as it would a private CA), can require a login, and keeps
every message it accepts, parsed, for the test to read. ``replies`` scripts refusals: each RCPT
or DATA takes the next reply queued for it, then answers 250.
"""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.stack import free_port

HOST = "127.0.0.1"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key; returns their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    login: str | None

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    @property
    def html(self) -> str | None:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else None


@dataclass
class _Handler:
    inbox: list[Received] = field(default_factory=list)
    replies: dict[str, list[str]] = field(default_factory=lambda: {"RCPT": [], "DATA": []})
    delay: float = 0.0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.replies["RCPT"]:
            return self.replies["RCPT"].pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            time.sleep(self.delay)  # holds the server's loop: the client's timeout must fire
        if self.replies["DATA"]:
            return self.replies["DATA"].pop(0)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        login = session.auth_data.login.decode() if session.auth_data else None
        self.inbox.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                parsed,
                tls=session.ssl is not None
                or server.transport.get_extra_info("ssl_object") is not None,
                login=login,
            )
        )
        return "250 Message accepted"


class SmtpServer:
    """``SmtpServer(folder, security="starttls", login=("user", "pass"))``; ``.settings`` are
    the portal's SMTP_ settings that reach it."""

    def __init__(
        self,
        folder: Path,
        *,
        security: str = "starttls",
        login: tuple[str, str] | None = None,
    ):
        self.security = security
        self.login = login
        self.handler = _Handler()
        self.cert, key = self_signed(Path(folder))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.port = free_port()
        options: dict = {}
        if security == "starttls":
            options.update(tls_context=context, require_starttls=True)
        elif security == "tls":
            options.update(ssl_context=context)
        if login is not None:
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=security != "none",
            )
        self.controller = Controller(self.handler, hostname=HOST, port=self.port, **options)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and (
                auth_data.login.decode(),
                auth_data.password.decode(),
            )
            == self.login
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def inbox(self) -> list[Received]:
        return self.handler.inbox

    def refuse(self, command: str, reply: str) -> None:
        self.handler.replies[command].append(reply)

    @property
    def settings(self) -> dict[str, str]:
        found = {
            "EMAIL_PROVIDER": "smtp",
            "SMTP_HOST": HOST,
            "SMTP_PORT": str(self.port),
            "SMTP_SECURITY": self.security,
            "SMTP_FROM": "Aid portal <portal@example.org>",
            "SMTP_TIMEOUT": "5",
            "SMTP_CA_FILE": str(self.cert),
        }
        if self.login:
            found.update(SMTP_USERNAME=self.login[0], SMTP_PASSWORD=self.login[1])
        return found

    def wait_for(self, count: int, timeout: float = 20) -> list[Received]:
        """Wait until ``count`` messages arrived; returns them all."""
        deadline = time.monotonic() + timeout
        while len(self.inbox) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.inbox)} of {count} emails arrived in {timeout}s")
            time.sleep(0.05)
        return list(self.inbox)

"""Email providers: the development outbox, and an SMTP server (TLS or STARTTLS, with login).

A provider gets an address, a subject and the text and HTML bodies, and returns the message's
id. Errors name what went wrong (timeout, the server's reply code) and never the address or the
text: they end up in job errors, which staff read.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from portal.comms.providers import ProviderConfigError, ProviderError

OUTBOX, SMTP = "outbox", "smtp"
PROVIDERS = (OUTBOX, SMTP)
STARTTLS, TLS, NONE = "starttls", "tls", "none"
SECURITY = (STARTTLS, TLS, NONE)
DEFAULT_PORTS = {STARTTLS: 587, TLS: 465, NONE: 25}


class OutboxEmailProvider:
    """Sends nothing: the stored message is what the development outbox page shows."""

    name = OUTBOX
    idempotent = True  # nothing leaves the portal

    def send(self, to: str, subject: str, text: str, html: str | None) -> str | None:
        return None


class SmtpEmailProvider:
    """One SMTP connection per message: a job sends one email, and retries open a new one."""

    name = SMTP
    idempotent = False  # SMTP has no way to say "the message you may already have"

    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 15,
        ca_file: str | None = None,
    ):
        self.host, self.port, self.security = host, port, security
        self.sender, self.username, self.password = sender, username, password
        self.timeout, self.ca_file = timeout, ca_file

    def compose(self, to: str, subject: str, text: str, html: str | None) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or None
        message["Message-ID"] = make_msgid(domain=domain)
        message["Auto-Submitted"] = "auto-generated"  # no out-of-office replies to the portal
        message.set_content(text)
        if html:
            message.add_alternative(html, subtype="html")
        return message

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.security == TLS:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.security == STARTTLS:
            try:
                client.ehlo()
                # Refuses (SMTPNotSupportedError) a server that does not offer STARTTLS: the
                # mail never goes out in clear when encryption was asked for.
                client.starttls(context=context)
            except BaseException:
                client.close()
                raise
        return client

    def send(self, to: str, subject: str, text: str, html: str | None) -> str | None:
        message = self.compose(to, subject, text, html)
        try:
            with self._connect() as client:
                client.ehlo()
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise ProviderError(
                f"The SMTP server refused the login: reply {exc.smtp_code}.", permanent=True
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise ProviderError(
                "The SMTP server does not offer what SMTP_SECURITY or the login needs.",
                permanent=True,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            # The exception maps each address to its reply: only the codes are kept.
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise ProviderError(
                f"The SMTP server refused the recipient: reply {', '.join(map(str, codes))}.",
                permanent=all(code >= 500 for code in codes),
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise ProviderError(
                f"The SMTP server refused the message: reply {exc.smtp_code}.",
                permanent=exc.smtp_code >= 500,
            ) from None
        except ssl.SSLCertVerificationError:
            raise ProviderError(
                "The SMTP server's certificate could not be verified (see SMTP_CA_FILE).",
                permanent=True,
            ) from None
        except TimeoutError:
            raise ProviderError("The SMTP server did not answer in time.") from None
        except smtplib.SMTPServerDisconnected as exc:
            # smtplib turns a timeout while waiting for a reply into a disconnection.
            if isinstance(exc.__context__, TimeoutError):
                raise ProviderError("The SMTP server did not answer in time.") from None
            raise ProviderError("The SMTP server closed the connection.") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ProviderError(
                f"The SMTP server could not be reached: {type(exc).__name__}."
            ) from None
        return message["Message-ID"][:80]


def check_config(config: Mapping) -> None:
    """Refuse email settings that cannot work, naming what to set (called when the app starts)."""
    name = config.get("EMAIL_PROVIDER") or OUTBOX
    production = config.get("ENV_NAME") == "production"
    if name not in PROVIDERS:
        raise ProviderConfigError(
            f"EMAIL_PROVIDER must be one of {', '.join(PROVIDERS)}, got {name!r}."
        )
    if name == OUTBOX:
        if production:
            raise ProviderConfigError(
                "Email goes to the development outbox: in production nobody would receive "
                "invitations or password resets. Set SMTP_HOST, SMTP_FROM and the other SMTP_ "
                "settings (see README.md, 'Email')."
            )
        return
    missing = [key for key in ("SMTP_HOST", "SMTP_FROM") if not config.get(key)]
    if missing:
        raise ProviderConfigError(
            "EMAIL_PROVIDER=smtp needs these settings, which are not set: "
            + ", ".join(missing)
            + "."
        )
    security = (config.get("SMTP_SECURITY") or STARTTLS).lower()
    if security not in SECURITY:
        raise ProviderConfigError(
            f"SMTP_SECURITY must be one of {', '.join(SECURITY)}, got {security!r}."
        )
    if security == NONE and production:
        raise ProviderConfigError(
            "SMTP_SECURITY=none sends passwords and links in clear: production needs starttls "
            "or tls."
        )
    if bool(config.get("SMTP_USERNAME")) != bool(config.get("SMTP_PASSWORD")):
        raise ProviderConfigError("SMTP_USERNAME and SMTP_PASSWORD are set together or not at all.")
    if "@" not in parseaddr(config["SMTP_FROM"])[1]:
        raise ProviderConfigError("SMTP_FROM must be an email address, as 'Name <a@b.org>'.")


def get_provider(config: Mapping):
    check_config(config)
    if (config.get("EMAIL_PROVIDER") or OUTBOX) == OUTBOX:
        return OutboxEmailProvider()
    security = (config.get("SMTP_SECURITY") or STARTTLS).lower()
    return SmtpEmailProvider(
        config["SMTP_HOST"],
        int(config.get("SMTP_PORT") or DEFAULT_PORTS[security]),
        security,
        config["SMTP_FROM"],
        username=config.get("SMTP_USERNAME"),
        password=config.get("SMTP_PASSWORD"),
        timeout=float(config.get("SMTP_TIMEOUT") or 15),
        ca_file=config.get("SMTP_CA_FILE"),
    )

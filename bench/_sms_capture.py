"""A local stand-in for a Twilio-style SMS API that keeps what it is sent, like a row of phones.

The portal's production provider (``SMS_PROVIDER=http``, ``portal.comms.providers``) POSTs
``To``, ``From`` and ``Body`` as a form with basic auth to ``SMS_HTTP_URL``; this server answers
201 with a message ``sid`` as Twilio does, and files the text under the recipient's number. A
benchmark then reads a sign-in or payment code the way the person holding that phone would.

Numbers are filed by their last ten digits, so ``+9779805800001`` and ``9805800001`` (the
national form a benchmark typed) are the same phone.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from tests.support.services import free_port

CODE = re.compile(r"\b(\d{6})\b")


def phone_key(number: str) -> str:
    digits = re.sub(r"\D", "", number or "")
    return digits[-10:]


@dataclass(frozen=True)
class Text:
    seq: int  # order of arrival over all phones
    at: float  # time.monotonic() when it arrived
    to: str
    body: str

    @property
    def code(self) -> str | None:
        found = CODE.search(self.body)
        return found.group(1) if found else None


class SmsCapture:
    """``start()`` a server on 127.0.0.1; read ``settings()`` into the portal's environment."""

    def __init__(self, account: str = "ACbench", token: str = "bench-sms-token"):  # noqa: S107
        self.account, self.token = account, token
        self.port = free_port()
        self._lock = threading.Lock()
        self._by_phone: dict[str, list[Text]] = {}
        self._seq = 0
        self.received = 0
        self.refused = 0  # wrong credentials or malformed posts: the provider is misconfigured
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def settings(self) -> dict[str, str]:
        return {
            "SMS_PROVIDER": "http",
            "SMS_HTTP_URL": (
                f"http://127.0.0.1:{self.port}/2010-04-01/Accounts/{{account}}/Messages.json"
            ),
            "SMS_ACCOUNT": self.account,
            "SMS_TOKEN": self.token,
            "SMS_FROM": "+15005550006",
            # The embedded settings allow plain http; a local address must be named to be used.
            "OUTBOUND_PRIVATE_HOSTS": "127.0.0.1",
        }

    # ----------------------------------------------------------------------- reading

    def mark(self) -> int:
        """The sequence number to read after: texts that arrive later are newer than this."""
        with self._lock:
            return self._seq

    def latest(self, phone: str, after: int) -> Text | None:
        with self._lock:
            for text in reversed(self._by_phone.get(phone_key(phone), ())):
                if text.seq > after:
                    return text
                break
        return None

    def latest_code(self, phone: str, after: int) -> str | None:
        """The newest code among the texts ``phone`` got after the mark: a person reads past a
        receipt for an earlier payment that arrived after the code (its job ran late)."""
        with self._lock:
            for text in reversed(self._by_phone.get(phone_key(phone), ())):
                if text.seq <= after:
                    break
                if text.code:
                    return text.code
        return None

    def wait_code(self, phone: str, after: int, timeout: float) -> str:
        """Block until a text with a code reaches ``phone`` (for synchronous callers)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.latest_code(phone, after)
            if code:
                return code
            time.sleep(0.02)
        raise TimeoutError(f"no SMS code reached the phone within {timeout:.0f} s")

    # ----------------------------------------------------------------------- serving

    def _file(self, to: str, body: str) -> str:
        with self._lock:
            self._seq += 1
            text = Text(self._seq, time.monotonic(), to, body)
            phone = self._by_phone.setdefault(phone_key(to), [])
            phone.append(text)
            del phone[:-20]  # a phone keeps its last texts; older codes are of no use
            self.received += 1
            return f"SM{text.seq:032d}"

    def start(self) -> SmsCapture:
        capture = self
        expected = "Basic " + base64.b64encode(f"{self.account}:{self.token}".encode()).decode()
        path = f"/2010-04-01/Accounts/{self.account}/Messages.json"

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # one line per text would drown the benchmark's output
                pass

            def _answer(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode(errors="replace"))
                auth = self.headers.get("Authorization") or ""
                if self.path != path or not hmac.compare_digest(auth, expected):
                    capture.refused += 1
                    self._answer(401, {"code": 20003, "message": "Authenticate"})
                    return
                to, body = (form.get("To") or [""])[0], (form.get("Body") or [""])[0]
                if not to or not body:
                    capture.refused += 1
                    self._answer(400, {"code": 21604, "message": "missing To or Body"})
                    return
                self._answer(201, {"sid": capture._file(to, body), "status": "queued"})

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sms-capture", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

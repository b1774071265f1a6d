"""A local stand-in for the portal's message providers, with their delivery receipts.

- SMS in Twilio's shape: ``POST /2010-04-01/Accounts/<account>/Messages.json`` (basic auth,
  form ``To``, ``From``, ``Body``, ``StatusCallback``) → 201 ``{"sid": "SM…"}``. With
  ``idempotency`` on, a request whose ``Idempotency-Key`` header was seen before is answered
  with the first message's sid and nothing is sent again. Receipts: ``sent`` then ``delivered``
  (or ``undelivered`` with an ``ErrorCode`` for numbers in ``outcome``), posted as a form to the
  message's ``StatusCallback`` with ``X-Twilio-Signature``.
- WhatsApp in the Cloud API's shape: ``POST /v21.0/<phone id>/messages`` (bearer token, a
  template message as JSON) → 200 ``{"messages": [{"id": "wamid…"}]}``. Receipts: a webhook
  body with ``statuses`` (and the ``biz_opaque_callback_data`` sent) posted to ``webhook_url``
  with ``X-Hub-Signature-256``.

Knobs: ``delay`` (seconds before answering: a provider that times out, after it took the
message), ``fail_next`` (HTTP statuses to answer next, before taking anything), ``outcome``
(number → error code), ``hold`` (receipts kept in ``held`` for the test to deliver instead of
posted), ``receipt_delay`` (seconds between taking a message and its receipts).
"""

from __future__ import annotations

import base64
import json
import queue
import sys
import threading
import time
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

from portal.comms.receipts import hub_signature, twilio_signature


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A client that gave up (a timeout on purpose, a worker killed with -9) is expected.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class FakeProviders:
    def __init__(
        self,
        *,
        account: str = "ACtest",
        token: str = "sms-test-token",  # noqa: S107
        phone_id: str = "1055",
        wa_token: str = "wa-test-token",  # noqa: S107
        app_secret: str = "wa-app-secret",  # noqa: S107
        idempotency: bool = False,
        senders: int = 4,
    ):
        self.account, self.token = account, token
        self.phone_id, self.wa_token, self.app_secret = phone_id, wa_token, app_secret
        self.idempotency = idempotency
        self.delay = 0.0
        self.fail_next: list[int] = []
        self.outcome: dict[str, str] = {}
        self.hold = False
        self.receipt_delay = 0.0
        self.webhook_url: str | None = None
        # Post receipts here instead of the URL's own host (the portal behind a proxy whose
        # public address, PUBLIC_BASE_URL, is what the signature covers).
        self.deliver_to: str | None = None
        self.held: list[tuple[str, dict[str, str], bytes]] = []  # (url, headers, body)
        self.posts = 0  # message requests answered 2xx
        self.refused = 0  # bad credentials or malformed
        self.delivered: Counter[str] = Counter()  # number → messages handed to the phone
        self.texts: list[tuple[str, str]] = []  # (number, text) as delivered
        self.receipt_answers: Counter[int] = Counter()
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.last_receipt_at: float | None = None
        self._keys: dict[str, str] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self._outgoing: queue.Queue = queue.Queue()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self._threads = [threading.Thread(target=self.server.serve_forever, daemon=True)]
        self._threads += [
            threading.Thread(target=self._send_receipts, daemon=True) for _ in range(senders)
        ]

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeProviders:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        for _ in self._threads[1:]:
            self._outgoing.put(None)

    def sms_settings(self) -> dict[str, str]:
        settings = {
            "SMS_PROVIDER": "http",
            "SMS_HTTP_URL": f"{self.url}/2010-04-01/Accounts/{{account}}/Messages.json",
            "SMS_ACCOUNT": self.account,
            "SMS_TOKEN": self.token,
            "SMS_FROM": "+15005550006",
        }
        if self.idempotency:
            settings["SMS_IDEMPOTENCY_HEADER"] = "Idempotency-Key"
        return settings

    def whatsapp_settings(self) -> dict[str, str]:
        return {
            "WHATSAPP_PROVIDER": "cloud",
            "WHATSAPP_API_URL": f"{self.url}/v21.0",
            "WHATSAPP_PHONE_ID": self.phone_id,
            "WHATSAPP_TOKEN": self.wa_token,
            "WHATSAPP_APP_SECRET": self.app_secret,
        }

    # ------------------------------------------------------------------ receipts

    def _queue_receipt(self, url: str, headers: dict[str, str], body: bytes) -> None:
        if self.hold:
            with self._lock:
                self.held.append((url, headers, body))
        else:
            self._outgoing.put((time.monotonic() + self.receipt_delay, url, headers, body))

    def _send_receipts(self) -> None:
        while True:
            item = self._outgoing.get()
            if item is None:
                return
            due, url, headers, body = item
            time.sleep(max(0.0, due - time.monotonic()))
            if self.deliver_to:
                path = url.split("://", 1)[-1].partition("/")[2]
                url = f"{self.deliver_to.rstrip('/')}/{path}"
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
            for _ in range(5):  # as providers do: a receipt the portal did not take is retried
                try:
                    with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
                        status = reply.status
                except urllib.error.HTTPError as exc:
                    status = exc.code
                except OSError:
                    status = 0
                with self._lock:
                    self.receipt_answers[status] += 1
                    self.last_receipt_at = time.monotonic()
                if 200 <= status < 300 or status in (403, 404):
                    break
                time.sleep(0.5)

    def sms_receipt(self, callback: str, sid: str, status: str, code: str | None = None):
        form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": self.account}
        if code:
            form["ErrorCode"] = code
        signature = twilio_signature(self.token, callback, form.items())
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        return callback, headers, urlencode(form).encode()

    def whatsapp_receipt(self, wamid: str, to: str, status: str, key: str | None, code=None):
        entry = {
            "id": wamid,
            "status": status,
            "timestamp": str(int(time.time())),
            "recipient_id": to,
        }
        if key:
            entry["biz_opaque_callback_data"] = key
        if code:
            entry["errors"] = [{"code": int(code), "title": "failed"}]
        body = json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": "WABA",
                        "changes": [
                            {
                                "field": "messages",
                                "value": {
                                    "messaging_product": "whatsapp",
                                    "metadata": {"phone_number_id": self.phone_id},
                                    "statuses": [entry],
                                },
                            }
                        ],
                    }
                ],
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": hub_signature(self.app_secret, body),
        }
        return self.webhook_url or "", headers, body

    # ------------------------------------------------------------------ the API

    def _take(self, number: str, text: str, key: str | None) -> tuple[str, bool]:
        """The message id for this request, and whether it is new (not a repeat of ``key``)."""
        with self._lock:
            if key and self.idempotency and key in self._keys:
                return self._keys[key], False
            self._seq += 1
            ident = f"{self._seq:08d}"
            if key:
                self._keys[key] = ident
            self.posts += 1
            now = time.monotonic()
            self.first_at = self.first_at or now
            self.last_at = now
            if number not in self.outcome:
                self.delivered[number] += 1
                self.texts.append((number, text))
            return ident, True

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):
                size = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(size)
                with fake._lock:
                    failing = fake.fail_next.pop(0) if fake.fail_next else None
                if failing:
                    return self._answer(failing, {"code": 20500, "message": "busy"})
                if self.path.startswith("/2010-04-01/"):
                    return self._sms(raw)
                if self.path.startswith(f"/v21.0/{fake.phone_id}/messages"):
                    return self._whatsapp(raw)
                return self._answer(404, {"message": "no such resource"})

            def _sms(self, raw: bytes):
                expected = base64.b64encode(f"{fake.account}:{fake.token}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {expected}":
                    fake.refused += 1
                    return self._answer(401, {"code": 20003, "message": "Authenticate"})
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                number, text = form.get("To", ""), form.get("Body", "")
                if not number or not text:
                    fake.refused += 1
                    return self._answer(400, {"code": 21602, "message": "Body is required"})
                sid, new = fake._take(number, text, self.headers.get("Idempotency-Key"))
                sid = "SM" + sid
                callback = form.get("StatusCallback")
                if new and callback:
                    fake._queue_receipt(*fake.sms_receipt(callback, sid, "sent"))
                    code = fake.outcome.get(number)
                    final = "undelivered" if code else "delivered"
                    fake._queue_receipt(*fake.sms_receipt(callback, sid, final, code))
                if fake.delay:
                    time.sleep(fake.delay)  # taken, but the answer comes too late
                return self._answer(201, {"sid": sid, "status": "queued"})

            def _whatsapp(self, raw: bytes):
                if self.headers.get("Authorization") != f"Bearer {fake.wa_token}":
                    fake.refused += 1
                    return self._answer(401, {"error": {"code": 190, "message": "bad token"}})
                try:
                    body = json.loads(raw)
                    number = body["to"]
                    template = body["template"]
                    text = template["components"][0]["parameters"][0]["text"]
                    assert body["messaging_product"] == "whatsapp" and body["type"] == "template"
                    assert template["name"] and template["language"]["code"]
                except (ValueError, KeyError, IndexError, TypeError, AssertionError):
                    fake.refused += 1
                    return self._answer(400, {"error": {"code": 100, "message": "Invalid"}})
                key = body.get("biz_opaque_callback_data")
                wamid, new = fake._take("+" + number, text, None)
                wamid = "wamid." + wamid
                if new and fake.webhook_url:
                    fake._queue_receipt(*fake.whatsapp_receipt(wamid, number, "sent", key))
                    code = fake.outcome.get("+" + number)
                    final = "failed" if code else "delivered"
                    fake._queue_receipt(*fake.whatsapp_receipt(wamid, number, final, key, code))
                if fake.delay:
                    time.sleep(fake.delay)
                return self._answer(
                    200,
                    {
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": number, "wa_id": number}],
                        "messages": [{"id": wamid}],
                    },
                )

        return Handler

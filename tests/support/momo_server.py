"""A local stand-in for a mobile-money Disbursement API in MTN MoMo's shape.

- ``POST /disbursement/token/``: basic auth (API user:key) and ``Ocp-Apim-Subscription-Key``
  → 200 ``{"access_token", "token_type", "expires_in"}``;
- ``POST /disbursement/v1_0/transfer``: bearer token, ``X-Reference-Id`` (UUID),
  ``X-Target-Environment``, optional ``X-Callback-Url`` → 202; a reference seen before → 409
  ``{"code": "RESOURCE_ALREADY_EXIST"}``;
- ``GET /disbursement/v1_0/transfer/<ref>`` → 200 with ``status`` PENDING / SUCCESSFUL / FAILED
  (and ``reason``), or 404 ``{"code": "RESOURCE_NOT_FOUND"}``;
- the callback: a PUT of the transfer's body to its callback URL once it is final.

Knobs for tests: ``outcome`` per payee number (FAILED with a reason), ``pending_for`` (status
queries that still answer PENDING), ``slow_first`` (the first transfer request sleeps past the
client's timeout, after it was recorded), ``fail_next`` (HTTP statuses to answer next),
``lose_callbacks``, ``lie`` (the callback claims this status whatever the truth), and
``deliver`` (how callbacks are sent: over HTTP by default, or kept in ``held`` for the test
thread to deliver).
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that went away before its answer (a worker killed with -9 mid-request, on
        # purpose in the chaos tests) is not the provider's error.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FakeMomo:
    def __init__(self, api_user="user-1", api_key="key-1", subscription_key="sub-1"):
        self.api_user, self.api_key, self.subscription_key = api_user, api_key, subscription_key
        self.tokens: set[str] = set()
        self.transfers: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.transfer_posts: list[str] = []  # references, each POST
        self.status_queries: dict[str, int] = {}
        self.outcome: dict[str, tuple[str, str]] = {}  # payee partyId -> (status, reason)
        self.pending_for = 0
        self.slow_first = 0.0
        self.fail_next: list[int] = []
        self.lose_callbacks = False
        self.lie: str | None = None
        self.hold_callbacks = False
        self.held: list[tuple[str, bytes]] = []
        self.delivered: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeMomo:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what the provider decides --------------------------------------------------------------

    def _final(self, reference: str) -> tuple[str, str]:
        """A transfer's end, decided once (from ``outcome`` for its payee, when it is first
        asked for) and kept: a later change of ``outcome`` is for later transfers."""
        transfer = self.transfers[reference]
        if "final" not in transfer:
            payee = transfer["payee"].get("partyId")
            transfer["final"] = self.outcome.get(payee, ("SUCCESSFUL", ""))
        return transfer["final"]

    def change_final(self, reference: str, status: str, reason: str = "") -> None:
        """The provider changes its mind about a finished transfer (a payment reported failed
        goes through after all) and calls back again."""
        with self._lock:
            self.transfers[reference]["final"] = (status, reason)
        self.finish(reference)

    def _status_of(self, reference: str) -> dict:
        transfer = self.transfers[reference]
        body = {k: v for k, v in transfer.items() if k not in ("callback", "final")}
        if self.status_queries.get(reference, 0) <= self.pending_for:
            return {**body, "status": "PENDING"}
        status, reason = self._final(reference)
        body.update(status=status, financialTransactionId=str(abs(hash(reference)) % 10**9))
        if reason:
            body["reason"] = reason
        return body

    def finish(self, reference: str) -> None:
        """The transfer is final: send (or hold, or lose) its callback."""
        transfer = self.transfers[reference]
        url = transfer.get("callback")
        if not url or self.lose_callbacks:
            return
        status, reason = self._final(reference)
        body = {k: v for k, v in transfer.items() if k not in ("callback", "final")}
        body.update(status=self.lie or status)
        if reason and not self.lie:
            body["reason"] = reason
        raw = json.dumps(body).encode()
        if self.hold_callbacks:
            self.held.append((url, raw))
            return
        request = urllib.request.Request(  # noqa: S310
            url, data=raw, method="PUT", headers={"Content-Type": "application/json"}
        )
        try:
            # The URL is the one the portal gave in X-Callback-Url, http(s) to 127.0.0.1.
            with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
                self.delivered.append((url, reply.status))
        except Exception as exc:  # the portal's answer is the test's business
            self.delivered.append((url, getattr(exc, "code", 0)))

    # -- HTTP ---------------------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict | None = None) -> None:
                raw = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _authorised(self) -> bool:
                header = self.headers.get("Authorization", "")
                return (
                    header.startswith("Bearer ")
                    and header[7:] in fake.tokens
                    and self.headers.get("Ocp-Apim-Subscription-Key") == fake.subscription_key
                    and bool(self.headers.get("X-Target-Environment"))
                )

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def do_POST(self):
                fake.requests.append(("POST", self.path))
                if fake.fail_next:
                    self._body()
                    return self._send(fake.fail_next.pop(0), {"code": "INTERNAL_PROCESSING_ERROR"})
                if self.path == "/disbursement/token/":
                    expected = base64.b64encode(f"{fake.api_user}:{fake.api_key}".encode()).decode()
                    if (
                        self.headers.get("Authorization") != f"Basic {expected}"
                        or self.headers.get("Ocp-Apim-Subscription-Key") != fake.subscription_key
                    ):
                        return self._send(401, {"error": "login_failed"})
                    token = uuid.uuid4().hex
                    fake.tokens.add(token)
                    return self._send(
                        200,
                        {"access_token": token, "token_type": "access_token", "expires_in": 3600},
                    )
                if self.path != "/disbursement/v1_0/transfer":
                    return self._send(404, {"code": "RESOURCE_NOT_FOUND"})
                if not self._authorised():
                    return self._send(401, {"code": "UNAUTHORIZED"})
                reference = self.headers.get("X-Reference-Id", "")
                body = self._body()
                try:
                    uuid.UUID(reference)
                except ValueError:
                    return self._send(400, {"code": "INVALID_REFERENCE_ID"})
                with fake._lock:
                    fake.transfer_posts.append(reference)
                    if reference in fake.transfers:
                        return self._send(409, {"code": "RESOURCE_ALREADY_EXIST"})
                    fake.transfers[reference] = {
                        "amount": body.get("amount"),
                        "currency": body.get("currency"),
                        "externalId": body.get("externalId"),
                        "payee": body.get("payee") or {},
                        "payerMessage": body.get("payerMessage"),
                        "payeeNote": body.get("payeeNote"),
                        "callback": self.headers.get("X-Callback-Url"),
                    }
                    slow, fake.slow_first = fake.slow_first, 0.0
                if slow:
                    time.sleep(slow)  # accepted, but the answer comes too late
                self._send(202)
                if fake.pending_for == 0:
                    threading.Thread(target=fake.finish, args=(reference,), daemon=True).start()

            def do_GET(self):
                fake.requests.append(("GET", self.path))
                prefix = "/disbursement/v1_0/transfer/"
                if not self.path.startswith(prefix):
                    return self._send(404, {"code": "RESOURCE_NOT_FOUND"})
                if not self._authorised():
                    return self._send(401, {"code": "UNAUTHORIZED"})
                reference = self.path[len(prefix) :]
                with fake._lock:
                    if reference not in fake.transfers:
                        return self._send(404, {"code": "RESOURCE_NOT_FOUND"})
                    fake.status_queries[reference] = fake.status_queries.get(reference, 0) + 1
                    body = fake._status_of(reference)
                self._send(200, body)

        return Handler

"""A local stand-in for KoboToolbox's API v2, answering in its JSON shape.

``GET /api/v2/assets/<uid>/data/?format=json&limit=N&start=M`` with ``Authorization: Token <t>``
returns ``{"count", "next", "previous", "results"}`` where ``next`` is an absolute URL, as Kobo
does. The real HTTP client of the portal talks to it over loopback.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakeKobo:
    def __init__(self, asset_uid: str, token: str, submissions: list[dict]):
        self.asset_uid = asset_uid
        self.token = token
        self.submissions = submissions
        self.requests: list[str] = []
        self.next_override: str | None = None  # to test a `next` that points elsewhere
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeKobo:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                fake.requests.append(self.path)
                parts = urlsplit(self.path)
                if self.headers.get("Authorization") != f"Token {fake.token}":
                    return self._send(401, {"detail": "Invalid token."})
                if parts.path != f"/api/v2/assets/{fake.asset_uid}/data/":
                    return self._send(404, {"detail": "Not found."})
                query = parse_qs(parts.query)
                limit = int(query.get("limit", ["100"])[0])
                start = int(query.get("start", ["0"])[0])
                page = fake.submissions[start : start + limit]
                following = start + limit
                next_url = None
                if following < len(fake.submissions):
                    next_url = fake.next_override or (
                        f"{fake.url}{parts.path}?format=json&limit={limit}&start={following}"
                    )
                return self._send(
                    200,
                    {
                        "count": len(fake.submissions),
                        "next": next_url,
                        "previous": None,
                        "results": page,
                    },
                )

        return Handler


def submission(uuid: str, name: str, phone: str, **extra) -> dict:
    """A submission as Kobo returns it: answers plus its bookkeeping fields."""
    return {
        "_id": abs(hash(uuid)) % 10**8,
        "_uuid": uuid,
        "formhub/uuid": "f0f0f0",
        "meta/instanceID": f"uuid:{uuid}",
        "_submission_time": "2026-11-20T10:00:00",
        "_attachments": [],
        "_geolocation": [None, None],
        "respondent/full_name": name,
        "respondent/phone": phone,
        **extra,
    }

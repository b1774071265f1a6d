"""The production web command (the Procfile's gunicorn) survives hostile payloads.

Before the nesting check, one anonymous Socket.IO packet or webhook body nested ~100,000 deep
overran the thread's stack and killed the worker without a traceback (gunicorn's master then
booted a new one, dropping every connection). Here the real command gets those payloads, over
polling and WebSocket, and must answer each with a refusal while the one worker it booted keeps
serving. It also gets a 50 MB body for the sign-in form, which must be refused without being
read, and its answers carry no ``Server:`` banner.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time

import pytest
import requests
import websocket

from tests.support import stack

pytestmark = pytest.mark.integration

DEEP = 100_000


@pytest.fixture(scope="module")
def web(app_factory, redis_db, portal_secrets, tmp_path_factory, database_factory):
    # The production web command (gunicorn's gevent worker) refuses SQLite: PostgreSQL only.
    url = database_factory("portal_it_hostile", migrate=False)
    folder = tmp_path_factory.mktemp("hostile")
    env = stack.released_env(
        database_url=url, redis_url=redis_db.url, secrets=portal_secrets, folder=folder
    )
    source_id, secret = _kobo_source(app_factory(url))
    with stack.running(stack.ProcfileProcess("web", env, folder)) as process:
        yield process, source_id, secret


def _kobo_source(app) -> tuple[int, str]:
    from portal.extensions import db
    from portal.imports import kobo
    from portal.imports.models import KOBO, ImportSource

    with app.app_context():
        source = ImportSource(name="Hostile test", kind=KOBO, kobo_asset_uid="aB3xYz9QwE")
        db.session.add(source)
        db.session.flush()
        secret = kobo.new_webhook_secret(source)
        db.session.commit()
        return source.id, secret


def _polling_session(base: str) -> str:
    reply = requests.get(f"{base}/socket.io/?EIO=4&transport=polling", timeout=10)
    assert reply.status_code == 200
    assert "Server" not in reply.headers
    return json.loads(reply.text[1:])["sid"]


def _polling_post(base: str, sid: str, body: str) -> requests.Response:
    return requests.post(
        f"{base}/socket.io/?EIO=4&transport=polling&sid={sid}",
        data=body.encode(),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
        timeout=30,
    )


def _websocket_send(base: str, packet: str) -> int | None:
    """Send one packet on a new WebSocket; the code the server closes it with (None: no code).

    Fails if the server keeps the connection open.
    """
    ws = websocket.create_connection(
        base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket", timeout=15
    )
    assert ws.recv().startswith("0")  # Engine.IO open
    try:
        ws.send(packet)
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return int.from_bytes(data[:2], "big") if len(data) >= 2 else None
    except (OSError, websocket.WebSocketConnectionClosedException):
        # Closed while the packet was still being sent: the reset may overtake the close frame.
        return None
    finally:
        with contextlib.suppress(Exception):
            ws.close()


def _still_the_same_worker(process) -> None:
    log = process.log_path.read_text(errors="replace")
    assert len(re.findall(r"Booting worker with pid", log)) == 1, process.log_tail()
    assert "was sent" not in log and "exited with code" not in log, process.log_tail()
    assert process.running()


def _health(base: str) -> None:
    reply = requests.get(f"{base}/health", timeout=10)
    assert reply.status_code == 200, reply.text
    assert "Server" not in reply.headers


def test_deep_socket_packets_are_refused_and_the_server_serves_on(web):
    process, _, _ = web
    base = process.base_url
    for body in ("42" + "[" * DEEP, "4" + "[" * DEEP):  # over the polling cap
        sid = _polling_session(base)
        assert _polling_post(base, sid, body).status_code == 413
    for body in ("42" + "[" * 60_000, '42["subscribe",' + '{"a":' * 10_000):  # under the cap
        sid = _polling_session(base)
        assert _polling_post(base, sid, body).status_code == 200
        assert _polling_post(base, sid, "40").status_code == 400  # that session was closed
    assert _websocket_send(base, "42" + "[" * DEEP) in (1009, None)  # 1009: message too big
    assert _websocket_send(base, "42" + "[" * 60_000) in (1000, None)
    _health(base)
    _still_the_same_worker(process)


def test_deep_webhook_body_is_refused_and_the_server_serves_on(web):
    process, source_id, secret = web
    base = process.base_url
    for opener in ("[", '{"a":'):
        reply = requests.post(
            f"{base}/api/kobo/{source_id}/submissions",
            data=opener * DEEP,
            headers={"Content-Type": "application/json", "X-Portal-Secret": secret},
            timeout=30,
        )
        assert reply.status_code == 400, reply.text
        assert reply.headers["Content-Type"] == "application/problem+json"
        assert "nested more than" in reply.json()["detail"]
    _health(base)
    _still_the_same_worker(process)


def test_fifty_megabytes_to_login_is_refused_unread(web):
    process, _, _ = web
    declared = 50 * 1024 * 1024
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", process.port), timeout=10) as conn:
        conn.sendall(
            b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {declared}\r\n\r\n".encode()
            + b"email=" * 10_000
        )
        head = conn.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head[:200]
    assert "\r\nserver:" not in head.lower()
    assert time.monotonic() - started < 5
    _health(process.base_url)
    _still_the_same_worker(process)

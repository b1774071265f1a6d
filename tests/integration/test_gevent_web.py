"""The Procfile's web command (gunicorn's gevent worker) as a platform runs it.

It serves Socket.IO in gevent mode, upgrades a polling session to a real WebSocket, answers
pages while more sockets are open than the old 50-thread command had threads, checks the chain
in /health, and refuses to start on a configuration that would block its loop (SQLite,
--preload), with a non-zero exit and the reason in its log.
"""

from __future__ import annotations

import contextlib
import secrets
import time

import pytest
import requests
import socketio
import websocket

from tests.support import services, stack

pytestmark = [pytest.mark.integration, pytest.mark.pg_heavy]

# More than the 50 threads of the old command, each of which one socket used to hold for good.
HELD_SOCKETS = 120


@pytest.fixture(scope="module")
def portal_env(database_factory, redis_db, portal_secrets, anvil_node, tmp_path_factory):
    url = database_factory("portal_it_gevent", migrate=False)
    folder = tmp_path_factory.mktemp("gevent")
    env = stack.released_env(
        database_url=url,
        redis_url=redis_db.url,
        secrets=portal_secrets,
        folder=folder,
        WEB3_PROVIDER_URI=anvil_node.url,
        SOCKETIO_CHANNEL=f"portal-gevent-{secrets.token_hex(4)}",
    )
    return env, folder


@pytest.fixture(scope="module")
def web(portal_env):
    env, folder = portal_env
    email, password = f"gevent-{secrets.token_hex(4)}@example.org", "a-long-gevent-password-7"
    stack.create_user(env, email, password, role="admin")
    with stack.running(stack.ProcfileProcess("web", env, folder)) as process:
        yield process, email, password


def test_health_reports_gevent_and_a_checked_chain(web, anvil_node):
    process, _, _ = web
    reply = requests.get(f"{process.base_url}/health", timeout=10)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["async_mode"] == "gevent"
    assert body["checks"] == {"database": "ok", "redis": "ok", "chain": "ok"}
    assert body["chain"]["chain_id"] == int(anvil_node.rpc("eth_chainId"), 16)


def test_a_polling_session_upgrades_to_a_real_websocket(web):
    process, email, password = web
    http = stack.sign_in(process.base_url, email, password)
    client = socketio.Client(reconnection=False, http_session=http, handle_sigint=False)
    try:
        client.connect(process.base_url, transports=["polling", "websocket"], wait_timeout=10)
        services.wait_for(lambda: client.transport() == "websocket", 10, what="the upgrade")
        ack = client.call("subscribe", {"topic": "jobs"}, timeout=10)
        assert ack["ok"] is True, ack
    finally:
        client.disconnect()


def _open_websocket(base: str) -> websocket.WebSocket:
    ws = websocket.create_connection(
        base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket", timeout=10
    )
    assert ws.recv().startswith("0")  # Engine.IO open: the server holds this connection now
    return ws


def test_pages_answer_while_more_sockets_are_open_than_there_were_threads(web):
    process, _, _ = web
    held = []
    try:
        for _ in range(HELD_SOCKETS):
            held.append(_open_websocket(process.base_url))
        for path in ("/login", "/health"):
            started = time.monotonic()
            reply = requests.get(f"{process.base_url}{path}", timeout=10)
            assert reply.status_code == 200, (path, reply.status_code)
            assert time.monotonic() - started < 2, path
    finally:
        for ws in held:
            with contextlib.suppress(Exception):
                ws.close()


def _refused_start(env: dict, folder, command: str | None = None) -> str:
    process = stack.ProcfileProcess("web", env, folder)
    if command is not None:
        process.argv = ["/bin/sh", "-c", command]
    process.start()
    try:
        services.wait_for(lambda: not process.running(), 60, what="the refused start")
    finally:
        code = process.stop()
    log = process.log_path.read_text(errors="replace")
    assert code not in (0, None), log[-3000:]
    return log


def test_sqlite_is_refused_with_a_reason(portal_env, tmp_path):
    env, _ = portal_env
    env = {**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}"}
    log = _refused_start(env, tmp_path)
    assert "Refusing to serve in gevent mode" in log
    assert "SQLite cannot serve under gevent" in log
    assert "Worker failed to boot" in log


def test_preload_is_refused_with_a_reason(portal_env, tmp_path):
    env, _ = portal_env
    command = stack.procfile()["web"].replace("gunicorn ", "gunicorn --preload ", 1)
    log = _refused_start(env, tmp_path, command)
    assert "--preload" in log and "Worker failed to boot" in log


def _answer(conn) -> bytes:
    """One HTTP/1.1 answer read off the socket (headers, then Content-Length bytes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data  # the server closed the connection
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(
        (line.split(b":", 1)[1] for line in head.split(b"\r\n")
         if line.lower().startswith(b"content-length:")),
        b"0",
    ))  # fmt: skip
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


@pytest.mark.parametrize("idle", [2.5, 4.0])
def test_a_kept_alive_connection_is_still_served_after_idle_seconds(web, idle):
    """A client (or a balancer's pool) that reuses its connection after a few idle seconds gets
    its answer: gunicorn's 2 s default closed it, and under load reset requests already sent."""
    import socket

    process, _, _ = web
    request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{process.port}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", process.port), timeout=15) as conn:
        conn.sendall(request)
        assert _answer(conn).startswith(b"HTTP/1.1 200"), "the first request"
        time.sleep(idle)
        conn.sendall(request)
        again = _answer(conn)
        assert again.startswith(b"HTTP/1.1 200"), f"after {idle} s idle: {again[:100]!r}"

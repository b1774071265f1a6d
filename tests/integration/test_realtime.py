"""Live updates across processes: a Dramatiq worker process changes a job, emits through Redis,
and a signed-in Socket.IO client of a separate web server process receives it.

The web server is ``flask --app wsgi serve --no-workers``, the worker the production entry
``dramatiq workers.main``; each runs in its own process group and is stopped by PID.
"""

from __future__ import annotations

import queue
import re
import secrets
import time
from dataclasses import dataclass

import pytest
import socketio

from tests.support import stack

pytestmark = pytest.mark.integration

JOB_UPDATED = "job.updated"  # portal.realtime.JOB_UPDATED; the wire name is the contract


@dataclass
class Stack:
    web: stack.ManagedProcess
    worker: stack.ManagedProcess
    email: str
    password: str
    database_url: str

    @property
    def base_url(self) -> str:
        return self.web.base_url

    def logs(self) -> str:
        return (
            f"\n--- {self.web.name} log ({self.web.log_path})\n{self.web.log_tail()}"
            f"\n--- {self.worker.name} log ({self.worker.log_path})\n{self.worker.log_tail()}"
        )


@pytest.fixture(scope="module", params=["serve", "procfile"])
def portal_stack(request, redis_db, portal_secrets, tmp_path_factory, sqlite_factory):
    """serve: ``flask serve --no-workers`` + ``dramatiq workers.main`` (1 process, 2 threads).
    procfile: the Procfile's release, web (gunicorn) and worker commands, as a platform runs them.
    """
    from_procfile = request.param == "procfile"
    if from_procfile:
        # The production web command (gevent) refuses SQLite: it needs PostgreSQL.
        url = request.getfixturevalue("database_factory")("portal_it_rt", migrate=False)
    else:
        try:
            url = request.getfixturevalue("database_factory")("portal_it_rt")
        except pytest.skip.Exception:
            # No PostgreSQL here: a SQLite file shared by both processes.
            url = sqlite_factory()
    folder = tmp_path_factory.mktemp("stack")
    env = stack.portal_env(
        database_url=url,
        redis_url=redis_db.url,
        instance_dir=folder / "instance",
        secrets=portal_secrets,
    )
    if from_procfile:
        stack.run_procfile_release(env)
        web = stack.ProcfileProcess("web", env, folder)
        worker = stack.ProcfileProcess("worker", env, folder)
    else:
        web = stack.WebServer(env, folder)
        worker = stack.Worker(env, folder, processes=1, threads=2)
    email, password = f"rt-{secrets.token_hex(4)}@example.org", "a-long-test-password-42"
    stack.create_user(env, email, password, role="admin")
    try:
        web.start()
        worker.start()
        web.wait_ready()
        worker.wait_ready()
        yield Stack(web, worker, email, password, url)
    finally:
        worker.stop()
        web.stop()


def _client(http=None) -> socketio.Client:
    return socketio.Client(reconnection=False, http_session=http, handle_sigint=False)


def test_socket_refuses_a_client_that_is_not_signed_in(portal_stack):
    client = _client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(portal_stack.base_url, transports=["websocket"], wait_timeout=10)
    client.disconnect()


def test_worker_process_event_reaches_socketio_client(portal_stack):
    base = portal_stack.base_url
    http = stack.sign_in(base, portal_stack.email, portal_stack.password)
    events: queue.Queue = queue.Queue()
    client = _client(http)
    client.on(JOB_UPDATED, lambda data: events.put((time.time(), data)))
    try:
        client.connect(base, transports=["websocket"], wait_timeout=10)
        ack = client.call("subscribe", {"topic": "jobs"}, timeout=10)
        assert ack["ok"] is True, ack
        assert "counts" in ack["snapshot"] and "jobs" in ack["snapshot"]

        reply = http.post(
            f"{base}/jobs/diagnostic",
            data={"csrf_token": stack.fresh_csrf(http, base), "fail_times": "0"},
            allow_redirects=False,
            timeout=10,
        )
        assert reply.status_code in (302, 303), reply.text[:500]
        job_id = int(re.search(r"/jobs/(\d+)", reply.headers["Location"]).group(1))

        # Other runs may share this Redis (pub/sub is not per database): keep our job only.
        mine: list[tuple[float, dict]] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                received, data = events.get(timeout=0.5)
            except queue.Empty:
                continue
            if data.get("id") == job_id:
                mine.append((received, data))
                if data["status"] in ("succeeded", "failed"):
                    break
        statuses = [d["status"] for _, d in mine]
        assert statuses and statuses[-1] == "succeeded", (statuses, portal_stack.logs())
        # "running" and "succeeded" are set only by the worker process.
        assert "running" in statuses, statuses
        for received, data in mine:
            assert isinstance(data["ts"], float)
            assert -1 < received - data["ts"] < 10  # same clock: the delivery time
        last = max(mine, key=lambda pair: pair[1]["ts"])[1]
        assert last["status"] == "succeeded"
    finally:
        client.disconnect()

"""Scale-out as documented: two web processes and two worker processes on one Redis and one
database. A job posted through one web process is run once by one of the workers, and its live
updates reach clients of both web processes. A change of access made through one web process
closes the sockets it concerns on the other."""

from __future__ import annotations

import queue
import re
import secrets
import threading
import time

import pytest
import socketio
from sqlalchemy import create_engine, text

from tests.support import stack

pytestmark = [pytest.mark.integration, pytest.mark.pg_heavy]
JOB_UPDATED = "job.updated"


@pytest.fixture(scope="module")
def cluster(redis_db, portal_secrets, database_factory, tmp_path_factory):
    url = database_factory("portal_it_scale")
    folder = tmp_path_factory.mktemp("cluster")
    env = stack.portal_env(
        database_url=url,
        redis_url=redis_db.url,
        instance_dir=folder / "instance",
        secrets=portal_secrets,
        SOCKETIO_CHANNEL=f"portal-scale-{secrets.token_hex(4)}",
    )
    email, password = f"ops-{secrets.token_hex(4)}@example.org", "a-long-cluster-password-9"
    admin_id = stack.create_user(env, email, password, role="admin")
    webs = [stack.WebServer(env, folder / f"web{i}") for i in (1, 2)]
    workers = [stack.Worker(env, folder / f"worker{i}", processes=1, threads=4) for i in (1, 2)]
    for i in (1, 2):
        (folder / f"web{i}").mkdir(exist_ok=True)
        (folder / f"worker{i}").mkdir(exist_ok=True)
    processes = [*webs, *workers]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.wait_ready()
        yield {
            "webs": webs,
            "workers": workers,
            "email": email,
            "password": password,
            "url": url,
            "env": env,
            "admin_id": admin_id,
        }
    finally:
        for process in processes:
            process.stop()


def _listen(base: str, http) -> tuple[socketio.Client, queue.Queue]:
    events: queue.Queue = queue.Queue()
    client = socketio.Client(reconnection=False, http_session=http, handle_sigint=False)
    client.on(JOB_UPDATED, lambda data: events.put(data))
    client.connect(base, transports=["websocket"], wait_timeout=10)
    assert client.call("subscribe", {"topic": "jobs"}, timeout=10)["ok"] is True
    return client, events


def test_jobs_run_once_and_updates_reach_every_web_process(cluster):
    web1, web2 = (w.base_url for w in cluster["webs"])
    http1 = stack.sign_in(web1, cluster["email"], cluster["password"])
    http2 = stack.sign_in(web2, cluster["email"], cluster["password"])
    client1, events1 = _listen(web1, http1)
    client2, events2 = _listen(web2, http2)
    try:
        job_ids = []
        token = stack.fresh_csrf(http1, web1)
        for _ in range(20):
            reply = http1.post(
                f"{web1}/jobs/diagnostic",
                data={"csrf_token": token, "fail_times": "0"},
                allow_redirects=False,
                timeout=10,
            )
            assert reply.status_code in (302, 303), reply.text[:300]
            job_ids.append(int(re.search(r"/jobs/(\d+)", reply.headers["Location"]).group(1)))

        def finished(events: queue.Queue) -> set[int]:
            done: set[int] = set()
            deadline = time.monotonic() + 60
            while done != set(job_ids) and time.monotonic() < deadline:
                try:
                    data = events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if data.get("id") in job_ids and data["status"] == "succeeded":
                    done.add(data["id"])
            return done

        assert finished(events1) == set(job_ids)
        assert finished(events2) == set(job_ids), "web 2's client missed updates of web 1's jobs"
    finally:
        client1.disconnect()
        client2.disconnect()

    engine = create_engine(cluster["url"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "select j.id, j.status, count(a.id) from jobs j "
                    "join job_attempts a on a.job_id = j.id where j.id = any(:ids) group by j.id"
                ),
                {"ids": job_ids},
            ).all()
    finally:
        engine.dispose()
    assert len(rows) == 20
    assert all(status == "succeeded" and tries == 1 for _, status, tries in rows), rows


# --- access changes reach the sockets of every web process -----------------------------------

SESSION_ENDED = "session.ended"


class _Socket:
    """A signed-in browser's socket on one web process, recording how it ends."""

    def __init__(self, base: str, http):
        self.ended = threading.Event()
        self.closed = threading.Event()
        self.client = socketio.Client(reconnection=False, http_session=http, handle_sigint=False)
        self.client.on(SESSION_ENDED, lambda *_: self.ended.set())
        self.client.on("disconnect", lambda *_: self.closed.set())
        self.client.connect(base, transports=["websocket"], wait_timeout=10)

    def watch(self, project_id: int) -> dict:
        return self.client.call(
            "subscribe", {"topic": "dashboard", "project_id": project_id}, timeout=10
        )

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()


def _post(http, base: str, path: str, data: dict):
    data = {"csrf_token": stack.fresh_csrf(http, base), **data}
    reply = http.post(f"{base}{path}", data=data, allow_redirects=False, timeout=10)
    assert reply.status_code in (302, 303), reply.text[:300]
    return reply


def _scoped_user(cluster) -> tuple[int, str, str]:
    email, password = f"field-{secrets.token_hex(4)}@example.org", "another-long-password-7"
    return stack.create_user(cluster["env"], email, password, role="viewer"), email, password


def test_removing_a_member_on_one_web_process_closes_their_socket_on_the_other(cluster):
    web1, web2 = (w.base_url for w in cluster["webs"])
    admin = stack.sign_in(web1, cluster["email"], cluster["password"])
    user_id, email, password = _scoped_user(cluster)
    reply = _post(
        admin, web1, "/projects/new", {"name": f"Ward {user_id}", "type": "cva", "currency": "NPR"}
    )
    project_id = int(re.search(r"/projects/(\d+)", reply.headers["Location"]).group(1))
    members = f"/projects/{project_id}/members"
    _post(admin, web1, members, {"members": [str(cluster["admin_id"]), str(user_id)]})

    user = stack.sign_in(web2, email, password)
    watcher = _Socket(web2, user)
    admin_watcher = _Socket(web2, stack.sign_in(web2, cluster["email"], cluster["password"]))
    try:
        assert watcher.watch(project_id)["ok"] is True
        assert admin_watcher.watch(project_id)["ok"] is True

        _post(admin, web1, members, {"members": [str(cluster["admin_id"])]})

        assert watcher.closed.wait(10), "web 2 kept the removed member's socket open"
        assert not watcher.ended.is_set(), "the user is still signed in: only access changed"
        again = _Socket(web2, user)
        try:
            assert again.watch(project_id) == {"ok": False, "error": "forbidden"}
        finally:
            again.close()
        time.sleep(0.5)
        assert admin_watcher.client.connected, "a member who stayed lost their socket"
    finally:
        watcher.close()
        admin_watcher.close()


def test_revoking_a_session_on_one_web_process_closes_its_socket_on_the_other(cluster):
    web1, web2 = (w.base_url for w in cluster["webs"])
    _, email, password = _scoped_user(cluster)
    on_web2 = stack.sign_in(web2, email, password)
    socket = _Socket(web2, on_web2)
    try:
        assert socket.client.connected
        on_web1 = stack.sign_in(web1, email, password)
        account = on_web1.get(f"{web1}/account", timeout=10).text
        (revoke,) = re.findall(r'action="(/account/sessions/\d+/revoke)"', account)
        _post(on_web1, web1, revoke, {})

        assert socket.ended.wait(10), "web 2's socket was not told its session ended"
        assert socket.closed.wait(10), "web 2 kept the revoked session's socket open"
        with pytest.raises(socketio.exceptions.ConnectionError):
            _Socket(web2, on_web2)
    finally:
        socket.close()

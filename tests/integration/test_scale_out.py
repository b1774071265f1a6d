"""Scale-out as documented: two web processes and two worker processes on one Redis and one
database. A job posted through one web process is run once by one of the workers, and its live
updates reach clients of both web processes."""

from __future__ import annotations

import queue
import re
import secrets
import time

import pytest
import socketio
from sqlalchemy import create_engine, text

from tests.support import stack

pytestmark = pytest.mark.integration
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
    stack.create_user(env, email, password, role="admin")
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
        yield {"webs": webs, "workers": workers, "email": email, "password": password, "url": url}
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

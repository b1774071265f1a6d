"""A Jobs page hears "worker gone" when a running job's lease expires, without a reload."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import update

from portal import realtime
from portal.extensions import db, socketio
from portal.jobs import lease_watch, lifecycle
from portal.jobs import services as jobs
from portal.jobs.models import Job
from portal.timeutil import utcnow


def _running_job(manager, owner: str = "gone-host:1") -> int:
    job = jobs.run_diagnostic(manager)
    db.session.commit()
    assert lifecycle.claim(job.id, owner) is not None
    return job.id


def _lease_ends(job_id: int, at) -> None:
    db.session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(lease_expires_at=at)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _heard(monkeypatch) -> list[tuple[dict, list[str]]]:
    seen: list[tuple[dict, list[str]]] = []
    real = realtime.emit

    def spy(event_name, data, rooms):
        if event_name == realtime.JOB_UPDATED:
            seen.append((data, list(rooms)))
        return real(event_name, data, rooms)

    monkeypatch.setattr(realtime, "emit", spy)
    return seen


def test_an_expired_lease_is_announced_once_and_a_live_one_never(app, manager, monkeypatch):
    gone = _running_job(manager)
    alive = _running_job(manager, "live-host:2")
    watch = lease_watch.LeaseWatch(app)
    watch.since = utcnow()
    _lease_ends(gone, utcnow())
    heard = _heard(monkeypatch)

    watch.look(utcnow() + timedelta(seconds=1))
    assert [(d["id"], d["status"], d["worker_gone"]) for d, _ in heard] == [(gone, "running", True)]
    data, rooms = heard[0]
    assert "jobs:all" in rooms and f"job:{gone}" in rooms
    assert data["can_retry"] is True  # the page shows Retry at once
    assert alive not in [d["id"] for d, _ in heard]

    heard.clear()
    watch.look(utcnow() + timedelta(seconds=2))  # the same expiry is not announced again
    assert heard == []


def test_a_lease_that_expired_before_the_page_opened_is_not_sent_again(app, manager, monkeypatch):
    """The page's own snapshot shows it already: the watch starts from when it was wanted."""
    old = _running_job(manager)
    _lease_ends(old, utcnow() - timedelta(minutes=5))
    watch = lease_watch.LeaseWatch(app)
    watch.since = utcnow()
    heard = _heard(monkeypatch)
    watch.look()
    assert heard == []


def test_a_subscribed_jobs_page_hears_worker_gone(app, client, login, make_user, monkeypatch):
    user = make_user("admin")
    db.session.commit()
    job_id = _running_job(user)
    login(client, user)
    sio = socketio.test_client(client.application, flask_test_client=client)
    ack = sio.emit("subscribe", {"topic": "jobs"}, callback=True)
    assert ack["ok"] is True
    [listed] = [j for j in ack["snapshot"]["jobs"] if j["id"] == job_id]
    assert listed["worker_gone"] is False
    sio.get_received()

    watch = lease_watch.for_app(app)
    watch.since = utcnow()
    _lease_ends(job_id, utcnow())  # the worker stopped renewing it
    watch.look(utcnow() + timedelta(seconds=1))
    heard = [m["args"][0] for m in sio.get_received() if m["name"] == realtime.JOB_UPDATED]
    assert [(j["id"], j["worker_gone"], j["can_cancel"]) for j in heard] == [(job_id, True, True)]
    sio.disconnect()


def test_the_watch_runs_while_a_page_wants_it_and_then_ends(app, monkeypatch):
    app.config["JOB_LEASE_WATCH_SECONDS"] = 1
    monkeypatch.setattr(lease_watch, "IDLE_SECONDS", 1.5)
    looks: list[float] = []
    monkeypatch.setattr(lease_watch.LeaseWatch, "look", lambda self, now=None: looks.append(1))
    watch = lease_watch.LeaseWatch(app)
    watch.wanted()
    thread = watch._thread
    assert thread is not None and thread.is_alive()
    watch.wanted()  # a second page: the same thread
    assert watch._thread is thread
    thread.join(5)
    assert not thread.is_alive() and watch._thread is None
    assert looks  # it looked at least once before nobody wanted it


def test_off_when_the_interval_is_zero(app):
    app.config["JOB_LEASE_WATCH_SECONDS"] = 0
    watch = lease_watch.LeaseWatch(app)
    watch.wanted()
    time.sleep(0.05)
    assert watch._thread is None

"""The job outbox on a real Redis: a job whose message never reached Redis is re-sent by the
sweeper and then runs; on SQLite and on PostgreSQL (where the sweeper uses SKIP LOCKED)."""

from __future__ import annotations

import secrets

import dramatiq
import pytest
import redis

from tests.support import services as svc

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request, app_factory, sqlite_factory):
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else sqlite_factory()
    # No grace period: a job committed and unsent is due at once.
    app = app_factory(url, JOB_UNSENT_GRACE_SECONDS=0)
    from portal.jobs.broker import get_broker

    get_broker(app).flush_all()
    return app


def _queued_job_ids(broker, queue: str = "default") -> list[int]:
    """Job ids of the messages waiting in Redis (the broker keeps them in ``<ns>:<q>.msgs``)."""
    raw = broker.client.hvals(f"{broker.namespace}:{queue}.msgs")
    return sorted(dramatiq.Message.decode(body).args[0] for body in raw)


def _admin():
    from portal.accounts import services as accounts

    roles = accounts.seed_roles()
    return accounts.create_user(
        f"sweep-{secrets.token_hex(4)}@example.org",
        "Sweeper",
        "a-long-test-password-42",
        roles["admin"],
    )


def _job(job_id: int):
    from portal.extensions import db
    from portal.jobs.models import Job

    return db.session.get(Job, job_id, populate_existing=True)


def _run_until_done(app, job_id: int) -> str:
    from portal.extensions import db
    from workers.runtime import start_worker

    worker = start_worker(app, threads=2)
    try:

        def done():
            with app.app_context():
                status = _job(job_id).status
                db.session.remove()
                return status if status in ("succeeded", "failed") else None

        return svc.wait_for(done, 30, interval=0.1, what=f"job {job_id} to finish")
    finally:
        worker.stop()


def test_lost_message_is_resent_by_sweep(app):
    """The message of a committed job is gone (purged queue): the sweep finds it missing in
    Redis and sends it again, once."""
    from portal.extensions import db
    from portal.jobs import services as jobs
    from portal.jobs.broker import get_broker

    broker = get_broker(app)
    with app.app_context():
        job = jobs.run_diagnostic(_admin())
        db.session.commit()
        job_id = job.id
        assert _queued_job_ids(broker) == [job_id]
        assert jobs.sweep().resent == 0  # its message is there

        # What a crash between commit and send leaves behind: a row and no message.
        broker.flush("default")
        assert _queued_job_ids(broker) == []

        report = jobs.sweep()
        assert (report.resent, report.orphaned) == (1, 0)
        assert _queued_job_ids(broker) == [job_id]
        assert _job(job_id).sent_at is not None
        assert jobs.sweep().resent == 0  # sent now: not re-sent again
        db.session.remove()

    assert _run_until_done(app, job_id) == "succeeded"


def test_failed_send_is_resent_by_sweep(app, monkeypatch, caplog):
    """Redis refuses the send right after commit: the row stays unsent, the sweep sends it."""
    from portal.extensions import db
    from portal.jobs import services as jobs
    from portal.jobs.broker import get_broker

    broker = get_broker(app)
    real_enqueue = broker.enqueue

    def refuse(message, *, delay=None):
        raise redis.ConnectionError("Redis went away (simulated)")

    with app.app_context():
        user = _admin()
        db.session.commit()
        monkeypatch.setattr(broker, "enqueue", refuse)
        job = jobs.run_diagnostic(user)
        db.session.commit()  # the commit itself must succeed
        job_id = job.id
        assert _job(job_id).sent_at is None
        assert _queued_job_ids(broker) == []
        assert f"could not send job {job_id}" in caplog.text

        monkeypatch.setattr(broker, "enqueue", real_enqueue)
        assert jobs.sweep().resent == 1
        assert _queued_job_ids(broker) == [job_id]
        db.session.remove()

    assert _run_until_done(app, job_id) == "succeeded"


def test_a_message_held_by_a_dead_consumer_is_sent_again(app):
    """A worker process fetched the message and was killed (-9): the message sits in its
    acknowledgement set until Dramatiq's maintenance, a minute or more later. The sweeper
    counts it as lost once the consumer has been silent for a lease, and sends it again."""
    import time

    from portal.extensions import db
    from portal.jobs import services as jobs
    from portal.jobs.broker import get_broker

    broker = get_broker(app)
    ns = broker.namespace
    with app.app_context():
        job = jobs.run_diagnostic(_admin())
        db.session.commit()
        job_id = job.id
        # What a fetch by the consumer "dead-worker" did: the id moved to its ack set.
        (message_id,) = broker.client.hkeys(f"{ns}:default.msgs")
        broker.client.lrem(f"{ns}:default", 0, message_id)
        broker.client.sadd(f"{ns}:__acks__.dead-worker.default", message_id)
        now_ms = int(time.time() * 1000)
        broker.client.zadd(f"{ns}:__heartbeats__", {"dead-worker": now_ms})
        assert jobs.sweep().resent == 0  # the consumer spoke a moment ago: it may be alive

        lease_ms = app.config["JOB_LEASE_SECONDS"] * 1000
        broker.client.zadd(f"{ns}:__heartbeats__", {"dead-worker": now_ms - lease_ms - 1000})
        assert jobs.sweep().resent == 1
        assert _queued_job_ids(broker).count(job_id) == 2  # the old copy, and the new one
        db.session.remove()

    assert _run_until_done(app, job_id) == "succeeded"
    with app.app_context():
        assert _job(job_id).attempts == 1  # the old copy, handed back later, runs nothing
        db.session.remove()


def test_message_lost_with_redis_data_is_resent_at_the_next_sweep(app):
    """Sent, then Redis lost it (restart without AOF): the next sweep sends it again, found
    missing in Redis rather than guessed from its age."""
    from portal.extensions import db
    from portal.jobs import services as jobs
    from portal.jobs.broker import get_broker

    broker = get_broker(app)
    with app.app_context():
        job = jobs.run_diagnostic(_admin())
        db.session.commit()
        job_id = job.id
        broker.flush_all()
        assert jobs.sweep().resent == 1
        assert _queued_job_ids(broker) == [job_id]
        db.session.remove()

    assert _run_until_done(app, job_id) == "succeeded"

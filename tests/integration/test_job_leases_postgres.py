"""Leases under real concurrency on PostgreSQL: one claim wins, a former holder and a new claim
never both record, a retry and the sweeper never queue a job twice."""

from __future__ import annotations

import secrets
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

pytestmark = pytest.mark.integration

THREADS = 8


@pytest.fixture(scope="module")
def app(app_factory, pg_url):
    from portal.extensions import db

    app = app_factory(pg_url, DB_POOL_SIZE=THREADS + 2)
    yield app
    with app.app_context():
        db.engine.dispose()  # the server's connections are shared: give them back now


def _job(app) -> int:
    from portal.accounts import services as accounts
    from portal.extensions import db
    from portal.jobs import services as jobs

    with app.app_context():
        roles = accounts.seed_roles()
        user = accounts.create_user(
            f"lease-{secrets.token_hex(4)}@example.org", "L", "a-long-password-42", roles["admin"]
        )
        job_id = jobs.run_diagnostic(user).id
        db.session.commit()
        db.session.remove()
    return job_id


def _expire(app, job_id: int) -> None:
    from portal.extensions import db
    from portal.jobs.models import Job
    from portal.timeutil import utcnow

    with app.app_context():
        db.session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
        db.session.remove()


def _at_once(app, fns) -> list:
    from portal.extensions import db

    barrier = threading.Barrier(len(fns), timeout=30)
    results: list = [None] * len(fns)

    def run(i, fn):
        with app.app_context():
            try:
                db.session.connection()  # each holds its connection before the start line
                barrier.wait()
                results[i] = fn()
            except Exception as exc:
                results[i] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_one_of_many_claims_of_an_expired_lease_wins(app):
    from portal.jobs import lifecycle

    job_id = _job(app)
    with app.app_context():
        assert lifecycle.claim(job_id, "dead:1") is not None
    _expire(app, job_id)
    results = _at_once(app, [lambda: lifecycle.claim(job_id, "w") for _ in range(THREADS)])
    won = [r for r in results if r is not None]
    assert len(won) == 1, results


@pytest.mark.parametrize("round_", range(10))
def test_a_former_holder_finishing_and_a_new_claim_never_both_record(app, round_):
    from portal.extensions import db
    from portal.jobs import lifecycle
    from portal.jobs.models import SUCCEEDED, Job

    job_id = _job(app)
    with app.app_context():
        old = lifecycle.claim(job_id, "slow:1").lease_token
    _expire(app, job_id)

    def finish():
        return lifecycle.succeed(job_id, old) is not None

    def reclaim():
        return lifecycle.claim(job_id, "new:2") is not None

    finished, reclaimed = _at_once(app, [finish, reclaim])
    assert finished != reclaimed, (finished, reclaimed)
    with app.app_context():
        status, token = db.session.execute(
            select(Job.status, Job.lease_token).where(Job.id == job_id)
        ).one()
        db.session.remove()
    if finished:
        assert (status, token) == (SUCCEEDED, None)
    else:
        assert status == "running" and token != old


def test_retry_and_the_sweeper_take_a_lost_job_back_once(app):
    from portal.extensions import db
    from portal.jobs import lifecycle
    from portal.jobs import services as jobs
    from portal.jobs.models import Job, JobAttempt

    job_id = _job(app)
    with app.app_context():
        lifecycle.claim(job_id, "dead:1")
    _expire(app, job_id)

    def retry():
        jobs.retry(db.session.get(Job, job_id))
        db.session.commit()
        return "retried"

    def sweep():
        return jobs.sweep().orphaned

    results = _at_once(app, [retry, sweep, retry, sweep])
    with app.app_context():
        attempts = db.session.scalars(
            select(JobAttempt.outcome).where(JobAttempt.job_id == job_id)
        ).all()
        job = db.session.get(Job, job_id)
        assert job.status in ("queued", "retrying"), results
        assert job.lease_token is None
        assert attempts == ["failed"], attempts  # the lost try closed once
        db.session.remove()
    taken = [r for r in results if r == "retried" or r == 1]
    assert len(taken) == 1, results

"""Background jobs end to end on the StubBroker: outbox send, worker, retries, cancel, sweeper."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from portal.errors import InvalidTransition
from portal.extensions import db
from portal.jobs import dispatch, lifecycle
from portal.jobs import services as jobs
from portal.jobs.broker import get_broker
from portal.jobs.kinds import DIAGNOSTIC
from portal.jobs.models import (
    CANCELLED,
    FAILED,
    QUEUED,
    RETRYING,
    RUNNING,
    SUCCEEDED,
    Job,
    JobAttempt,
)
from portal.timeutil import utcnow


def _queued(app, queue: str = "default") -> int:
    return get_broker(app).queues[queue].qsize()


def _attempts(job: Job) -> list[JobAttempt]:
    return db.session.scalars(
        select(JobAttempt).where(JobAttempt.job_id == job.id).order_by(JobAttempt.number)
    ).all()


def _backdate(job: Job, **values) -> None:
    db.session.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


# --- the outbox: a message only for a committed row -------------------------------------------


def test_enqueue_writes_the_row_but_sends_only_after_commit(app, manager):
    job = jobs.run_diagnostic(manager)
    assert db.session.get(Job, job.id).status == QUEUED
    assert _queued(app) == 0, "a worker could pick up a job whose row it cannot see yet"
    assert job.sent_at is None

    db.session.commit()
    assert _queued(app) == 1
    db.session.refresh(job)
    # The hook after commit writes nothing (it would need a second connection): the sweeper
    # finds a job whose send failed by looking for its message in the broker.
    assert job.sent_at is None


def test_rollback_sends_nothing_and_is_forgotten(app, manager):
    job_id = jobs.run_diagnostic(manager).id
    db.session.rollback()
    assert db.session.get(Job, job_id) is None
    assert _queued(app) == 0

    # The next transaction must not send the job that was rolled back.
    manager.name = "Renamed"
    db.session.commit()
    assert _queued(app) == 0


def test_message_carries_only_the_job_id(app, manager):
    job = jobs.run_diagnostic(manager)
    db.session.commit()
    message = get_broker(app).queues["default"].get_nowait()
    get_broker(app).queues["default"].task_done()
    assert b'"args":[%d]' % job.id in message
    assert b"fail_times" not in message  # the payload stays in the database


# --- the worker -------------------------------------------------------------------------------


def test_worker_runs_the_diagnostic_job(worker, manager):
    job = jobs.run_diagnostic(manager)
    db.session.commit()
    worker.run()
    assert job.status == SUCCEEDED
    assert job.attempts == 1
    assert job.error is None
    assert job.finished_at is not None
    assert "database_ms" in job.result
    assert [a.outcome for a in _attempts(job)] == [SUCCEEDED]


def test_failing_job_is_retried_until_it_succeeds(worker):
    job = dispatch.enqueue(DIAGNOSTIC.name, {"fail_times": 2}, max_attempts=3)
    db.session.commit()
    worker.run()
    assert job.status == SUCCEEDED
    assert job.attempts == 3
    attempts = _attempts(job)
    assert [a.number for a in attempts] == [1, 2, 3]
    assert [a.outcome for a in attempts] == [FAILED, FAILED, SUCCEEDED]
    assert "Failing on purpose" in attempts[0].error
    assert all(a.finished_at is not None for a in attempts)
    assert job.error is None


def test_job_fails_when_attempts_run_out(worker):
    job = dispatch.enqueue(DIAGNOSTIC.name, {"fail_times": 5}, max_attempts=2)
    db.session.commit()
    worker.run()
    assert job.status == FAILED
    assert job.attempts == 2
    assert job.error.startswith("DiagnosticFailure: Failing on purpose: try 2 of the 5")
    assert job.finished_at is not None
    assert len(_attempts(job)) == 2
    assert worker.broker.dead_letters == []  # the Job row, not Dramatiq, is the dead letter


def test_retry_runs_a_failed_job_again(worker, manager):
    job = jobs.run_diagnostic(manager, fail_times=1)  # one attempt, which fails
    db.session.commit()
    worker.run()
    assert job.status == FAILED
    assert not job.can_cancel and job.can_retry

    jobs.retry(job)
    assert job.status == QUEUED and job.attempts == 0 and job.error is None
    db.session.commit()
    worker.run()
    assert job.status == SUCCEEDED
    assert job.attempts == 1
    assert [a.number for a in _attempts(job)] == [1, 2]


def test_only_failed_or_cancelled_jobs_can_be_retried(worker, manager):
    job = jobs.run_diagnostic(manager)
    with pytest.raises(InvalidTransition):
        jobs.retry(job)  # still queued
    db.session.commit()
    worker.run()
    with pytest.raises(InvalidTransition):
        jobs.retry(job)  # succeeded


def test_cancelled_job_is_skipped_by_the_worker(worker, manager):
    job = jobs.run_diagnostic(manager)
    db.session.commit()
    assert worker.queued() == 1

    jobs.cancel(job)
    db.session.commit()
    worker.run()
    assert job.status == CANCELLED
    assert job.attempts == 0
    assert _attempts(job) == []
    with pytest.raises(InvalidTransition):
        jobs.cancel(job)


def test_duplicate_delivery_runs_the_job_once(worker, manager):
    job = jobs.run_diagnostic(manager)
    db.session.commit()
    # At-least-once delivery: the same message arrives a second time.
    worker.broker.enqueue(dispatch.message_for(job.id, job.kind, job.queue))
    assert worker.queued() == 2
    worker.run()
    assert job.status == SUCCEEDED
    assert job.attempts == 1
    assert len(_attempts(job)) == 1


def test_a_second_claim_of_a_running_job_is_refused(app, manager):
    job = jobs.run_diagnostic(manager)
    db.session.commit()
    assert lifecycle.claim(job.id) is not None
    assert lifecycle.claim(job.id) is None
    assert db.session.scalar(select(func.count()).where(JobAttempt.job_id == job.id)) == 1


# --- the sweeper ------------------------------------------------------------------------------


def test_sweep_leaves_fresh_jobs_alone(worker, manager):
    jobs.run_diagnostic(manager)
    db.session.commit()
    report = jobs.sweep()
    assert (report.resent, report.orphaned) == (0, 0)
    assert worker.queued() == 1


def test_sweep_resends_a_committed_but_unsent_job(app, worker, manager):
    job = jobs.run_diagnostic(manager)
    db.session.commit()
    # As if the process died between commit and send, or Redis lost the message.
    worker.broker.flush("default")
    grace = app.config["JOB_UNSENT_GRACE_SECONDS"]
    _backdate(job, updated_at=utcnow() - timedelta(seconds=grace + 30))
    assert worker.queued() == 0

    report = jobs.sweep()
    assert report.resent == 1
    assert worker.queued() == 1
    worker.run()
    assert job.status == SUCCEEDED
    assert job.sent_at is not None
    assert job.attempts == 1


def test_sweep_recovers_a_job_orphaned_by_a_dead_worker(app, worker, manager):
    job = jobs.run_diagnostic(manager)
    db.session.commit()
    worker.broker.flush("default")
    # A worker claimed the job and died: the row says running, nobody is running it.
    lifecycle.claim(job.id)
    _backdate(job, lease_expires_at=utcnow() - timedelta(seconds=1))

    report = jobs.sweep()
    assert report.orphaned == 1
    db.session.expire_all()
    assert job.status == RETRYING
    assert "stopped before it finished" in job.error
    assert job.lease_token is None
    # Sent at once, not a sweep later.
    assert worker.queued() == 1
    worker.run()
    assert job.status == SUCCEEDED
    assert job.attempts == 2


def test_sweep_fails_an_orphan_that_has_no_attempts_left(app, manager):
    job = jobs.run_diagnostic(manager, fail_times=1)  # max_attempts=1
    db.session.commit()
    lifecycle.claim(job.id)
    _backdate(job, lease_expires_at=utcnow() - timedelta(seconds=1))
    assert jobs.sweep().orphaned == 1
    db.session.expire_all()
    assert job.status == FAILED
    assert job.finished_at is not None


def test_sweep_leaves_a_recently_started_job_running(app, manager):
    job = jobs.run_diagnostic(manager)
    db.session.commit()
    lifecycle.claim(job.id)
    assert jobs.sweep().orphaned == 0
    db.session.expire_all()
    assert job.status == RUNNING


# --- scoping ----------------------------------------------------------------------------------


def test_jobs_are_visible_within_project_scope_or_to_their_creator(
    make_user, make_project, manager
):
    agent = make_user(role="field agent")
    mine, other = make_project(members=[agent]), make_project()
    in_mine = jobs.run_diagnostic(manager, project_id=mine.id)
    in_other = jobs.run_diagnostic(manager, project_id=other.id)
    own = jobs.run_diagnostic(agent)
    seen = set(db.session.scalars(jobs.search(agent, jobs.JobFilter())))
    assert seen == {in_mine, own}
    assert in_other not in seen
    assert jobs.status_counts(agent)[QUEUED] == 2

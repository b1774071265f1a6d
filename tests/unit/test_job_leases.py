"""A job's claim is a lease: re-claimed once expired, never recorded over by a former holder."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from portal.errors import InvalidTransition
from portal.extensions import db
from portal.jobs import dispatch, leases, lifecycle
from portal.jobs import services as jobs
from portal.jobs.kinds import CHAIN_CONFIRM, DIAGNOSTIC, DISBURSEMENT_BATCH, KINDS
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


def _set(job_id: int, **values) -> None:
    db.session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _expire(job_id: int) -> None:
    _set(job_id, lease_expires_at=utcnow() - timedelta(seconds=1))


def _job(job_id: int) -> Job:
    db.session.expire_all()
    return db.session.get(Job, job_id)


def _new_job(manager, **kw) -> int:
    job = jobs.run_diagnostic(manager, **kw)
    db.session.commit()
    return job.id


def test_claim_writes_a_lease(app, manager):
    job_id = _new_job(manager)
    job = lifecycle.claim(job_id, "host:1")
    assert job.status == RUNNING and job.lease_owner == "host:1"
    assert len(job.lease_token) == 32
    left = (job.lease_expires_at - utcnow()).total_seconds()
    assert app.config["JOB_LEASE_SECONDS"] - 5 < left <= app.config["JOB_LEASE_SECONDS"]
    assert not job.worker_gone


def test_a_live_lease_refuses_a_second_claim_and_an_expired_one_allows_it(app, manager):
    job_id = _new_job(manager)
    first = lifecycle.claim(job_id).lease_token
    assert lifecycle.claim(job_id) is None  # the redelivered message while the worker lives

    _expire(job_id)  # the worker died: nobody renewed it
    assert _job(job_id).worker_gone
    second = lifecycle.claim(job_id)
    assert second is not None and second.lease_token != first
    assert second.attempts == 2
    attempts = db.session.scalars(
        select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.number)
    ).all()
    assert [a.outcome for a in attempts] == [FAILED, None]
    assert "lease expired" in attempts[0].error


def test_a_former_holder_cannot_record_success_and_its_work_is_rolled_back(app, manager):
    job_id = _new_job(manager)
    old = lifecycle.claim(job_id).lease_token
    _expire(job_id)
    new = lifecycle.claim(job_id).lease_token

    # The slow former holder finishes: what it wrote goes, nothing is recorded.
    manager.name = "Written by the former holder"
    db.session.flush()
    assert lifecycle.succeed(job_id, old) is None
    db.session.expire_all()
    assert manager.name != "Written by the former holder"
    assert _job(job_id).status == RUNNING and _job(job_id).lease_token == new
    assert lifecycle.fail(job_id, RuntimeError("late"), old) == (None, None)
    assert _job(job_id).status == RUNNING

    assert lifecycle.succeed(job_id, new).status == SUCCEEDED
    assert _job(job_id).lease_token is None


def test_the_sweeper_takes_an_expired_lease_and_the_former_holder_records_nothing(app, manager):
    job_id = _new_job(manager)
    old = lifecycle.claim(job_id).lease_token
    _expire(job_id)
    assert jobs.sweep().orphaned == 1
    assert _job(job_id).status == RETRYING
    assert lifecycle.succeed(job_id, old) is None
    assert _job(job_id).status == RETRYING


def test_the_heartbeat_renews_held_leases_only(app, manager):
    held_id, other_id = _new_job(manager), _new_job(manager)
    held = lifecycle.claim(held_id).lease_token
    lifecycle.claim(other_id)
    soon = utcnow() + timedelta(seconds=3)
    _set(held_id, lease_expires_at=soon)
    _set(other_id, lease_expires_at=soon)

    beat = leases.Heartbeat(app)
    beat.hold(held_id, held)
    assert beat.renew() == []
    assert _job(held_id).lease_expires_at > soon + timedelta(seconds=10)
    assert _job(other_id).lease_expires_at == soon


def test_the_heartbeat_stops_a_run_whose_lease_was_taken_over(app, manager):
    job_id = _new_job(manager)
    old = lifecycle.claim(job_id).lease_token
    beat = leases.Heartbeat(app)
    stopped = threading.Event()
    holding = threading.Event()

    def run():  # the job's thread: works until interrupted
        beat.hold(job_id, old)
        holding.set()
        try:
            for _ in range(200):
                time.sleep(0.05)
        except leases.LeaseLost:
            stopped.set()

    thread = threading.Thread(target=run)
    thread.start()
    holding.wait(5)
    _expire(job_id)
    assert lifecycle.claim(job_id) is not None  # another worker took it over
    assert beat.renew() == [job_id]
    thread.join(5)
    assert stopped.is_set()
    assert beat.held() == {}


def test_a_finished_run_is_not_interrupted(app, manager):
    job_id = _new_job(manager)
    token = lifecycle.claim(job_id).lease_token
    beat = leases.Heartbeat(app)
    beat.hold(job_id, token)
    beat.release(token)  # the middleware releases before recording the outcome
    lifecycle.succeed(job_id, token)
    assert beat.renew() == []


# --- manager actions on stuck work ------------------------------------------------------------


def test_retry_and_cancel_a_job_whose_worker_is_gone_but_not_a_live_one(app, manager):
    job_id = _new_job(manager)
    lifecycle.claim(job_id)
    job = _job(job_id)
    assert not job.can_retry and not job.can_cancel
    with pytest.raises(InvalidTransition, match="live worker"):
        jobs.retry(job)
    with pytest.raises(InvalidTransition, match="live worker"):
        jobs.cancel(job)

    _expire(job_id)
    job = _job(job_id)
    assert job.can_retry and job.can_cancel
    jobs.retry(job)
    db.session.commit()
    job = _job(job_id)
    assert (job.status, job.attempts, job.lease_token) == (QUEUED, 0, None)

    lifecycle.claim(job_id)
    _expire(job_id)
    jobs.cancel(_job(job_id))
    db.session.commit()
    assert _job(job_id).status == CANCELLED


def test_a_chain_job_that_ran_cannot_be_cancelled(app, manager):
    follow_up = dispatch.enqueue(CHAIN_CONFIRM.name, {"tx_id": 1})
    batch = dispatch.enqueue(DISBURSEMENT_BATCH.name, {"batch_id": 1})
    db.session.commit()
    assert not follow_up.can_cancel
    with pytest.raises(InvalidTransition, match="chain decides"):
        jobs.cancel(follow_up)

    assert batch.can_cancel  # never ran: no transaction of it can exist
    lifecycle.claim(batch.id)
    _expire(batch.id)
    batch = _job(batch.id)
    assert batch.worker_gone and not batch.can_cancel and batch.can_retry
    with pytest.raises(InvalidTransition, match="on its way"):
        jobs.cancel(batch)


# --- a message names its job's kind --------------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(other=st.sampled_from(sorted(set(KINDS) - {DIAGNOSTIC.name})))
def test_a_message_naming_another_kind_does_not_claim_the_job(app, manager, other):
    """A message left in Redis by another database names a job id this one holds for some
    other work: the job is not claimed, its row is untouched, and its own message still runs."""
    job_id = _new_job(manager)
    assert lifecycle.claim(job_id, "host:1", other) is None
    job = _job(job_id)
    assert (job.status, job.attempts, job.lease_token) == (QUEUED, 0, None)
    assert lifecycle.claim(job_id, "host:1", DIAGNOSTIC.name) is not None


def test_the_worker_drops_a_stray_message_and_runs_the_job_from_its_own(app, worker, manager):
    job_id = _new_job(manager)
    worker.broker.flush("default")
    stray = KINDS["campaigns.start"]
    worker.broker.enqueue(dispatch.message_for(job_id, stray.name, stray.queue))
    worker.run(stray.queue)
    job = _job(job_id)
    assert (job.status, job.attempts) == (QUEUED, 0)  # not failed by the wrong handler
    worker.broker.enqueue(dispatch.message_for(job_id, DIAGNOSTIC.name, DIAGNOSTIC.queue))
    worker.run()
    assert _job(job_id).status == SUCCEEDED


# --- the sweeper looks for the message in the broker ----------------------------------------


def test_a_queued_job_with_its_message_in_the_broker_is_not_sent_again(app, worker, manager):
    job_id = _new_job(manager)
    _set(job_id, updated_at=utcnow() - timedelta(hours=2))  # old, but still in the broker
    assert jobs.sweep().resent == 0
    assert worker.queued() == 1


def test_a_retrying_job_whose_message_was_lost_is_sent_with_its_delay(app, worker, manager):
    job_id = _new_job(manager)
    worker.broker.flush("default")
    _set(
        job_id,
        status=RETRYING,
        next_attempt_at=utcnow() + timedelta(seconds=30),
        updated_at=utcnow() - timedelta(minutes=1),
    )
    assert jobs.sweep().resent == 1
    assert worker.queued() == 0
    assert worker.queued("default.DQ") == 1  # delayed, as its backoff said


# --- generated interleavings ----------------------------------------------------------------

STEP = st.sampled_from(["claim", "expire", "succeed", "fail", "sweep"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(st.tuples(STEP, st.integers(0, 2)), min_size=1, max_size=14))
def test_at_most_one_holder_records_and_only_the_current_one(app, manager, steps):
    """Three workers claim, die (expire), finish and fail in any order, with the sweeper in
    between: an outcome is recorded only by the holder of the current lease, a job has at most
    one holder whose lease is live, and once finished it stays finished."""
    job_id = _new_job(manager)
    _set(job_id, max_attempts=50)
    tokens: dict[int, str] = {}
    finished = None
    for step, worker_no in steps:
        job = _job(job_id)
        status, gone, holder = job.status, job.worker_gone, job.lease_token
        if step == "claim":
            claimed = lifecycle.claim(job_id)
            if claimed is not None:
                assert status in (QUEUED, RETRYING) or gone
                tokens[worker_no] = claimed.lease_token
            else:
                assert status in (SUCCEEDED, FAILED, CANCELLED) or (status == RUNNING and not gone)
        elif step == "expire":
            if status == RUNNING:
                _expire(job_id)
        elif step == "sweep":
            jobs.sweep()
        else:
            token = tokens.get(worker_no)
            current = status == RUNNING and token is not None and holder == token
            if step == "succeed":
                recorded = lifecycle.succeed(job_id, token) is not None
            else:
                recorded = lifecycle.fail(job_id, RuntimeError("x"), token)[0] is not None
            assert recorded == current
        job = _job(job_id)
        if finished is not None:
            assert job.status == finished
        if job.status in (SUCCEEDED, FAILED):
            finished = job.status
        if job.status != RUNNING:
            assert job.lease_token is None

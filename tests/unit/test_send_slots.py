"""A message whose send slot is further off than a worker thread may sleep does not hold the
thread: its job goes back to the queue keeping the slot (``lifecycle.RunLater``), and its next
run sends at that slot without taking another, with no attempt used. On the StubBroker and
SQLite; the same on Redis and PostgreSQL, with other jobs running meanwhile, is in
``tests/integration/test_send_slots_redis.py``."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.comms import ratelimit
from portal.comms import services as comms
from portal.comms.models import OutboxMessage
from portal.extensions import db
from portal.jobs import dispatch, lifecycle
from portal.jobs.models import Job, JobAttempt
from tests.support.comms_provider import FakeProviders

NUMBER = "+9779841234567"


@pytest.fixture
def providers(app):
    with FakeProviders() as fake:
        fake.hold = True  # no receipts: not what these tests are about
        app.config.update(fake.sms_settings(), SMS_TIMEOUT_SECONDS=2)
        yield fake


@pytest.fixture
def counted(app, monkeypatch):
    """How many slots were taken from the schedule, and how many runs the SMS jobs had."""
    seen = {"takes": 0, "runs": 0}
    schedule = ratelimit.MemorySchedule()
    app.extensions["comms_rate_schedule"] = schedule
    take, deliver = schedule.take, comms.deliver

    def counting_take(*args, **kwargs):
        seen["takes"] += 1
        return take(*args, **kwargs)

    def counting_deliver(*args, **kwargs):
        seen["runs"] += 1
        return deliver(*args, **kwargs)

    monkeypatch.setattr(schedule, "take", counting_take)
    monkeypatch.setattr(comms, "deliver", counting_deliver)
    return seen


def _queue(n: int) -> list[int]:
    ids = [comms.send_sms(NUMBER, f"Distribution notice {k}", "notice").id for k in range(n)]
    db.session.commit()
    return ids


def _jobs_of(message_ids: list[int]) -> list[Job]:
    db.session.expire_all()
    job_ids = db.session.scalars(
        select(OutboxMessage.job_id).where(OutboxMessage.id.in_(message_ids))
    ).all()
    return list(db.session.scalars(select(Job).where(Job.id.in_(job_ids))))


def _attempt_rows(job_id: int) -> int:
    return db.session.scalar(select(func.count()).where(JobAttempt.job_id == job_id))


def test_a_far_slot_is_kept_and_the_job_runs_again_at_it(app, providers, worker, counted):
    """One worker thread, six messages at 3 a second, a thread may sleep 50 ms: the first is
    sent at once; a message whose slot is further off keeps it and runs again at it (how
    many do depends on how fast the thread gets to them: up to five). Six slots taken, every
    message sent once, each job one attempt."""
    app.config.update(SMS_RATE_PER_SECOND=3, COMMS_SLOT_HOLD_SECONDS=0.05)
    ids = _queue(6)
    worker.run("comms")
    assert providers.posts == 6
    assert counted["takes"] == 6
    assert 6 < counted["runs"] <= 11
    # The rate holds: the sends are spread over the five intervals the slots are apart.
    assert providers.last_at - providers.first_at >= 5 / 3 - 0.03
    for job in _jobs_of(ids):
        assert (job.status, job.attempts) == ("succeeded", 1)
        assert _attempt_rows(job.id) == 1
    db.session.expire_all()
    assert {m.status for m in db.session.scalars(select(OutboxMessage))} == {"sent"}
    assert {m.attempts for m in db.session.scalars(select(OutboxMessage))} == {1}


def test_a_near_slot_is_slept_for_on_the_thread(app, providers, worker, counted):
    """Slots within the hold are waited for where the job runs: no run again."""
    app.config.update(SMS_RATE_PER_SECOND=10, COMMS_SLOT_HOLD_SECONDS=1.0)
    _queue(4)
    worker.run("comms")
    assert providers.posts == 4 and counted == {"takes": 4, "runs": 4}


def test_a_deferral_on_the_last_attempt_does_not_use_it_up(app, providers, worker, counted):
    app.config.update(SMS_RATE_PER_SECOND=3, COMMS_SLOT_HOLD_SECONDS=0.05)
    ids = _queue(3)
    for job in _jobs_of(ids):
        job.max_attempts = 1
    db.session.commit()
    worker.run("comms")
    assert providers.posts == 3 and counted["runs"] > 3
    assert {(j.status, j.attempts) for j in _jobs_of(ids)} == {("succeeded", 1)}


def test_a_send_interrupted_after_a_deferral_still_goes_to_review(app, providers):
    """The deferred run is taken back (its claim number is used again), so a run that then
    dies between the provider's answer and its commit is still found by the next claim."""
    app.config.update(SMS_RATE_PER_SECOND=10, COMMS_SLOT_HOLD_SECONDS=0.0)
    schedule = ratelimit.MemorySchedule()
    app.extensions["comms_rate_schedule"] = schedule
    schedule.take("sms", 5.0, 10)  # the next slot is 5 s off: more than the hold
    (message_id,) = _queue(1)
    with pytest.raises(lifecycle.RunLater) as later:
        comms.deliver(message_id, claim=1)
    db.session.rollback()  # as lifecycle.later does: the deferred run leaves nothing
    slot = later.value.options["send_slot"]
    assert slot["channel"] == "sms" and later.value.delay_ms > 4000
    # The run again, at its slot, under the same claim number: the provider takes the message,
    # then the worker dies before its commit.
    dispatch.deliver_with(later.value.options)
    try:
        assert comms.deliver(message_id, claim=1).startswith("sent")
    finally:
        dispatch.deliver_with(None)
    db.session.rollback()
    assert providers.posts == 1
    assert comms.deliver(message_id, claim=2) == "outcome unknown: marked for review"
    db.session.commit()
    assert providers.posts == 1


def test_a_kept_slot_is_for_its_own_channel_only(app, providers, counted):
    """A slot kept for WhatsApp does not let an SMS skip the SMS schedule."""
    app.config.update(SMS_RATE_PER_SECOND=10, COMMS_SLOT_HOLD_SECONDS=0.05)
    dispatch.deliver_with({"send_slot": {"channel": "whatsapp", "at": 0}})
    try:
        ratelimit.wait_for_slot("sms")
        ratelimit.wait_for_slot("sms")  # 0.1 s off: more than the hold
    except lifecycle.RunLater:
        pass
    else:
        pytest.fail("the second SMS slot was not kept for later")
    finally:
        dispatch.deliver_with(None)
    assert counted["takes"] == 2


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    n=st.integers(min_value=1, max_value=7),
    rate=st.sampled_from([20.0, 40.0, 80.0]),
    hold=st.sampled_from([0.0, 0.02, 0.05, 1.0]),
)
def test_every_message_once_one_slot_each_whatever_the_rate_and_hold(
    app, providers, worker, n, rate, hold
):
    app.config.update(SMS_RATE_PER_SECOND=rate, COMMS_SLOT_HOLD_SECONDS=hold)
    schedule = ratelimit.MemorySchedule()
    app.extensions["comms_rate_schedule"] = schedule
    takes = []
    take = schedule.take
    schedule.take = lambda *args, **kwargs: takes.append(1) or take(*args, **kwargs)
    before = providers.posts
    ids = _queue(n)
    started = time.monotonic()
    worker.run("comms")
    took = time.monotonic() - started
    assert providers.posts - before == n
    assert len(takes) == n  # one slot per message, deferred or not
    assert took >= (n - 1) / rate - 0.03  # and the rate holds
    jobs = _jobs_of(ids)
    assert {(j.status, j.attempts) for j in jobs} == {("succeeded", 1)}
    assert all(_attempt_rows(j.id) == 1 for j in jobs)

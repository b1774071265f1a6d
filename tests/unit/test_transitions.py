"""State changes checked in the UPDATE itself (``portal.transitions``), and side effects that wait
for the real commit, not for a savepoint's release. The concurrency proofs are on PostgreSQL
(``tests/integration/test_races_postgres.py``); these pin the single-session behaviour."""

from __future__ import annotations

import dramatiq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from portal import realtime
from portal.errors import InvalidTransition
from portal.extensions import db
from portal.imports.models import KOBO, ImportSource, KoboSubmission
from portal.jobs import dispatch
from portal.jobs.broker import get_broker
from portal.jobs.models import Job
from portal.transitions import change, current_status, insert_or_skip, move

STATES = ("queued", "running", "succeeded", "failed", "cancelled", "retrying")


def _job(status: str) -> Job:
    job = Job(kind="system.diagnostic", queue="default", status=status, max_attempts=3)
    db.session.add(job)
    db.session.flush()
    return job


# Each example rolls its row back, so sharing the app between examples is safe.
@settings(
    derandomize=True,
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    start=st.sampled_from(STATES),
    allowed=st.sets(st.sampled_from(STATES), min_size=1),
    target=st.sampled_from(STATES),
)
def test_move_changes_only_from_the_allowed_states(app, start, allowed, target):
    job = _job(start)
    if start in allowed:
        move(job, allowed, target, "refused", error="moved")
        assert (job.status, job.error) == (target, "moved")
    else:
        with pytest.raises(InvalidTransition, match=r"^refused$"):
            move(job, allowed, target, "refused", error="moved")
        assert current_status(Job, job.id) == start
        assert db.session.get(Job, job.id, populate_existing=True).error is None
    db.session.rollback()


def test_the_refusal_names_the_state_found_not_the_state_loaded(app):
    job = _job("failed")
    db.session.commit()
    # Another request moves it on after this one loaded it.
    db.session.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(status="queued")
        .execution_options(synchronize_session=False)
    )
    assert job.status == "failed"  # what this request still believes
    with pytest.raises(InvalidTransition, match=r"^A queued job cannot be retried\.$"):
        move(job, ("failed",), "queued", lambda found: f"A {found} job cannot be retried.")


def test_change_takes_extra_conditions(app):
    job = _job("running")
    assert not change(Job, job.id, ("running",), "failed", where=(Job.attempts == 7,))
    assert change(Job, job.id, ("running",), "failed", where=(Job.attempts == 0,))
    assert current_status(Job, job.id) == "failed"


def test_insert_or_skip_inserts_once(app):
    source = ImportSource(name="kobo", kind=KOBO)
    db.session.add(source)
    db.session.flush()
    values = {"source_id": source.id, "uuid": "u-1", "outcome": "imported"}
    first = insert_or_skip(KoboSubmission, values, returning=KoboSubmission.id)
    assert first is not None
    assert insert_or_skip(KoboSubmission, values, returning=KoboSubmission.id) is None
    assert insert_or_skip(KoboSubmission, values) is None
    assert insert_or_skip(KoboSubmission, {**values, "uuid": "u-2"}) is True
    assert db.session.scalar(select(func.count()).select_from(KoboSubmission)) == 2


def test_a_released_savepoint_sends_nothing_before_the_commit(app, monkeypatch):
    """SQLAlchemy fires ``after_commit`` when a SAVEPOINT is released: the job message and the
    live event must still wait for the transaction itself."""
    emitted = []
    monkeypatch.setattr(realtime, "emit", lambda name, data, rooms: emitted.append(name))
    queue = get_broker(app).queues["default"]
    job = dispatch.enqueue("system.diagnostic", {})
    realtime.emit_after_commit("test.event", {}, ["room"])
    with db.session.begin_nested():
        db.session.add(Job(kind="system.diagnostic", queue="default", status="queued"))
    assert (queue.qsize(), emitted) == (0, [])
    db.session.commit()
    assert queue.qsize() == 1
    assert emitted.count("test.event") == 1
    assert [m.args[0] for m in map(dramatiq.Message.decode, list(queue.queue))] == [job.id]

"""The Job state machine as the worker drives it: claim, succeed, fail (retry or dead letter).

Each step is one conditional UPDATE, so two deliveries of the same message (at-least-once) can
never both run the job: the second finds it no longer claimable and is skipped. A claim is a
lease (``portal.jobs.leases``): once its worker stops renewing it, the job may be claimed again,
and the former holder's success or failure, conditional on its token, records nothing.
"""

from __future__ import annotations

import random
import traceback
import uuid
from datetime import timedelta

from dramatiq.rate_limits import RateLimitExceeded
from flask import current_app
from sqlalchemy import (
    DateTime,
    and_,
    delete,
    func,
    insert,
    inspect,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from portal.extensions import db
from portal.jobs import live, problems
from portal.jobs.models import (
    CLAIMABLE,
    FAILED,
    QUEUED,
    RETRYING,
    RUNNING,
    SUCCEEDED,
    Job,
    JobAttempt,
)
from portal.timeutil import utcnow


class PermanentJobError(Exception):
    """Raised by a handler when trying again cannot help (bad input): the job fails at once."""


class RefusedJob(PermanentJobError):
    """The job failed for good, but what the handler recorded about why is kept (committed with
    the failure), e.g. a batch marked refused with the contract's reason."""

    keeps_work = True


class RetryKeepingWork(Exception):
    """The attempt failed and may be tried again; what the handler recorded about it (an
    attempt count, a provider's answer) is committed with the failure."""

    keeps_work = True


class RunLater(RateLimitExceeded):
    """Raised by a handler that took something for a later moment (a provider's send slot a
    few seconds off) instead of holding its worker thread until then: the job goes back to
    queued, its message is sent again to arrive ``delay_ms`` later carrying ``options`` (which
    the next run reads through ``portal.jobs.dispatch.delivery_options``), and the run does not
    count: no attempt is used, and what the handler wrote is rolled back. (A Dramatiq rate-limit
    error, so the worker logs it as routine rather than as a failure.)"""

    def __init__(self, delay_ms: int, options: dict | None = None):
        super().__init__(f"run again in {delay_ms} ms")
        self.delay_ms = max(int(delay_ms), 0)
        self.options = options or {}


WORKER_GONE = "The worker running this job stopped before it finished (its lease expired)."


def claimable(now):
    """A job a message may start: queued or retrying, or running under a lease that expired
    (its worker is gone) with attempts left (the sweeper fails the ones without)."""
    return or_(
        Job.status.in_(CLAIMABLE),
        and_(
            Job.status == RUNNING,
            Job.lease_expires_at < now,
            Job.attempts < Job.max_attempts,
        ),
    )


def claim(job_id: int, owner: str | None = None, kind: str | None = None) -> Job | None:
    """Take the job's lease and move it to running if it may start; None if another delivery
    holds a live lease, or a cancel or a finish won. The returned job carries the new
    ``lease_token`` that every later step of this run must present.

    ``kind`` is what the message names: a job of another kind is not claimed. A message left
    in the broker by another database that used the same Redis (a restored backup, a second
    deployment, a test run before) names a job id this database may hold for something else;
    run, it would hand that job to the wrong handler, which fails it for good.

    Two statements and the commit on every job a worker runs (a third closes a dead worker's
    attempt on a re-claim): the claim returns the row it wrote, the attempt is numbered inside
    its INSERT, and the job stays loaded in the session after the commit (its row is this run's
    until it ends), so the handler does not read it again."""
    now = utcnow()
    token = uuid.uuid4().hex
    job = _update_returning(
        update(Job)
        .where(Job.id == job_id, claimable(now), *([Job.kind == kind] if kind else []))
        .values(
            status=RUNNING,
            attempts=Job.attempts + 1,
            started_at=now,
            next_attempt_at=None,
            lease_token=token,
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=current_app.config["JOB_LEASE_SECONDS"]),
        )
    )
    if job is None:
        db.session.rollback()
        return None
    if job.attempts > 1:
        # A previous try whose worker died never closed its attempt (a first claim has none).
        db.session.execute(
            update(JobAttempt)
            .where(JobAttempt.job_id == job_id, JobAttempt.finished_at.is_(None))
            .values(
                finished_at=now,
                outcome=FAILED,
                error=WORKER_GONE,
                problem=problems.coded(problems.WORKER_GONE_CODE),
            )
            .execution_options(synchronize_session=False)
        )
    tried = select(func.count()).where(JobAttempt.job_id == job_id).scalar_subquery()
    db.session.execute(
        insert(JobAttempt).from_select(
            ["job_id", "number", "started_at"],
            select(literal(job_id), tried + 1, literal(now, type_=DateTime())),
        )
    )
    live.emit_job(job)
    # Kept out of the commit's expiry: what the claim returned is the row as committed.
    db.session.expunge(job)
    db.session.commit()
    db.session.add(job)
    return job


def _update_returning(statement) -> Job | None:
    """Run an UPDATE of one job and return the job as written, in one round trip."""
    return db.session.scalars(
        statement.returning(Job),
        execution_options={"synchronize_session": False, "populate_existing": True},
    ).one_or_none()


def close_attempt(
    job_id: int, outcome: str, error: str | None = None, problem: str | None = None
) -> None:
    """Close the job's latest attempt (one UPDATE), with the sentence people read."""
    latest = (
        select(func.max(JobAttempt.number)).where(JobAttempt.job_id == job_id).scalar_subquery()
    )
    db.session.execute(
        update(JobAttempt)
        .where(JobAttempt.job_id == job_id, JobAttempt.number == latest)
        .values(finished_at=utcnow(), outcome=outcome, error=error, problem=problem)
        .execution_options(synchronize_session=False)
    )


def _release(job_id: int, token: str | None, **values) -> Job | None:
    """End this run's lease with ``values``, only if the run still holds it. The UPDATE locks
    the row until the commit, so a concurrent re-claim either sees the job finished or has
    already taken the lease (then this finds no row, and the caller rolls back its work).

    A result the handler set on the job is written by the same UPDATE."""
    held = db.session.identity_map.get(identity_key(Job, job_id))
    if held is not None:
        result = inspect(held).attrs.result_json.history.added
        if result:
            values.setdefault("result_json", result[0])
            # Written below, not by a flush of its own.
            set_committed_value(held, "result_json", result[0])
    return _update_returning(
        update(Job)
        .where(Job.id == job_id, Job.status == RUNNING, Job.lease_token == token)
        .values(lease_token=None, lease_expires_at=None, **values)
    )


def succeed(job_id: int, token: str | None = None) -> Job | None:
    """Record success, and commit the job's work with it, if this run still holds the lease.
    Otherwise the work is rolled back: another claim runs (or ran) the job."""
    job = _release(job_id, token, status=SUCCEEDED, error=None, problem=None, finished_at=utcnow())
    if job is None:
        db.session.rollback()
        return None
    close_attempt(job_id, SUCCEEDED)
    live.emit_job(job)
    db.session.commit()
    return job


def later(job_id: int, exc: RunLater, token: str | None = None) -> Job | None:
    """Put a job that asked to run later (``RunLater``) back in the queue as if this run had not
    happened: its attempt is taken back and its attempt row removed, so a job deferred many
    times never runs out of attempts, and a run that died before recording its outcome is still
    told apart from this one (``portal.comms.services.deliver`` counts on claim numbers).
    Nothing is recorded (None) if this run no longer holds the lease."""
    db.session.rollback()  # what the handler wrote goes; the job runs again
    job = _release(
        job_id,
        token,
        status=QUEUED,
        attempts=Job.attempts - 1,
        next_attempt_at=utcnow() + timedelta(milliseconds=exc.delay_ms),
    )
    if job is None:
        db.session.rollback()
        return None
    # The attempt this run opened, the latest (numbers run on across a staff retry).
    latest = (
        select(func.max(JobAttempt.number)).where(JobAttempt.job_id == job_id).scalar_subquery()
    )
    db.session.execute(
        delete(JobAttempt).where(JobAttempt.job_id == job_id, JobAttempt.number == latest)
    )
    live.emit_job(job)
    db.session.commit()
    return job


def backoff_ms(attempt: int) -> int:
    """Exponential backoff with full jitter, capped: spreads retries after a shared outage."""
    base = current_app.config["JOB_BACKOFF_BASE_MS"]
    cap = current_app.config["JOB_BACKOFF_CAP_MS"]
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return int(ceiling / 2 + random.random() * ceiling / 2)


def describe(exc: BaseException) -> str:
    """The error as shown on the Jobs page: type, message and where it happened."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = "".join(
        f"\n  at {f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in frames
    )
    return f"{type(exc).__name__}: {exc}{where}"[:4000]


def fail(
    job_id: int, exc: BaseException, token: str | None = None
) -> tuple[Job | None, int | None]:
    """Record a failed attempt; returns the job and the retry delay (None: dead letter).
    Nothing is recorded (None, None) if this run no longer holds the lease."""
    if not getattr(exc, "keeps_work", False):
        db.session.rollback()  # whatever the handler half-wrote goes
    job = db.session.get(Job, job_id, populate_existing=True)
    if job is None or job.status != RUNNING or job.lease_token != token:
        db.session.rollback()
        return None, None
    error = describe(exc)
    problem = problems.sentence(exc, job_id, job.attempts)
    delay = None
    if job.attempts < job.max_attempts and not isinstance(exc, PermanentJobError):
        delay = backoff_ms(job.attempts)
        values = {
            "status": RETRYING,
            "next_attempt_at": utcnow() + timedelta(milliseconds=delay),
        }
    else:
        values = {"status": FAILED, "finished_at": utcnow()}
    job = _release(job_id, token, error=error, problem=problem, **values)
    if job is None:
        db.session.rollback()
        return None, None
    close_attempt(job_id, FAILED, error, problem)
    live.emit_job(job)
    db.session.commit()
    return job, delay

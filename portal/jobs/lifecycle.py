"""The Job state machine as the worker drives it: claim, succeed, fail (retry or dead letter).

Each step is one conditional UPDATE, so two deliveries of the same message (at-least-once) can
never both run the job: the second finds it no longer claimable and is skipped.
"""

from __future__ import annotations

import random
import traceback
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from portal.extensions import db
from portal.jobs import live
from portal.jobs.models import CLAIMABLE, FAILED, RETRYING, RUNNING, SUCCEEDED, Job, JobAttempt
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


def claim(job_id: int) -> Job | None:
    """Move the job to running if it may start; None if another delivery or a cancel won."""
    now = utcnow()
    result = db.session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(CLAIMABLE))
        .values(status=RUNNING, attempts=Job.attempts + 1, started_at=now, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        return None
    job = db.session.get(Job, job_id, populate_existing=True)
    number = (db.session.scalar(select(func.count()).where(JobAttempt.job_id == job_id)) or 0) + 1
    db.session.add(JobAttempt(job_id=job_id, number=number, started_at=now))
    live.emit_job(job)
    db.session.commit()
    return job


def close_attempt(job_id: int, outcome: str, error: str | None = None) -> None:
    attempt = db.session.scalar(
        select(JobAttempt)
        .where(JobAttempt.job_id == job_id)
        .order_by(JobAttempt.number.desc())
        .limit(1)
    )
    if attempt is not None:
        attempt.finished_at = utcnow()
        attempt.outcome = outcome
        attempt.error = error


def succeed(job_id: int) -> Job | None:
    job = db.session.get(Job, job_id)
    if job.status != RUNNING:
        # Someone else (a cancel is impossible here, but the sweeper is not) decided already.
        db.session.rollback()
        return None
    job.status = SUCCEEDED
    job.error = None
    job.finished_at = utcnow()
    close_attempt(job_id, SUCCEEDED)
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


def fail(job_id: int, exc: BaseException) -> tuple[Job, int | None]:
    """Record a failed attempt; returns the job and the retry delay (None: dead letter)."""
    if not getattr(exc, "keeps_work", False):
        db.session.rollback()  # whatever the handler half-wrote goes
    job = db.session.get(Job, job_id, populate_existing=True)
    if job is None or job.status != RUNNING:
        return job, None
    job.error = describe(exc)
    close_attempt(job_id, FAILED, job.error)
    delay = None
    if job.attempts < job.max_attempts and not isinstance(exc, PermanentJobError):
        delay = backoff_ms(job.attempts)
        job.status = RETRYING
        job.next_attempt_at = utcnow() + timedelta(milliseconds=delay)
    else:
        job.status = FAILED
        job.finished_at = utcnow()
    live.emit_job(job)
    db.session.commit()
    return job, delay

"""Jobs as staff see them: listing within the user's scope, retry, cancel, and the sweeper."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import Select, and_, func, or_, select, update

from portal import events
from portal.errors import InvalidTransition, NotFound
from portal.extensions import db
from portal.jobs import dispatch, lifecycle, live
from portal.jobs.kinds import DIAGNOSTIC
from portal.jobs.models import (
    CANCELLED,
    FAILED,
    QUEUED,
    RETRYING,
    RUNNING,
    STATUSES,
    Job,
    JobAttempt,
)
from portal.projects import services as projects
from portal.timeutil import utcnow
from portal.transitions import move


def visible(user) -> Select:
    """Jobs of the projects the user sees, plus the user's own."""
    query = select(Job)
    ids = projects.visible_project_ids(user)
    if ids is not None:
        query = query.where(or_(Job.project_id.in_(ids), Job.created_by_id == user.id))
    return query


@dataclass
class JobFilter:
    queue: str = ""
    status: str = ""
    project_id: int | None = None
    kind: str = ""
    since: date | None = None
    until: date | None = None


def search(user, f: JobFilter) -> Select:
    query = visible(user)
    if f.queue:
        query = query.where(Job.queue == f.queue)
    if f.status in STATUSES:
        query = query.where(Job.status == f.status)
    if f.project_id:
        query = query.where(Job.project_id == f.project_id)
    if f.kind:
        query = query.where(Job.kind == f.kind)
    if f.since:
        query = query.where(Job.created_at >= datetime.combine(f.since, time.min))
    if f.until:
        query = query.where(
            Job.created_at < datetime.combine(f.until + timedelta(days=1), time.min)
        )
    return query.order_by(Job.created_at.desc(), Job.id.desc())


def status_counts(user) -> dict[str, int]:
    sub = visible(user).subquery()
    rows = db.session.execute(select(sub.c.status, func.count()).group_by(sub.c.status))
    return {status: 0 for status in STATUSES} | dict(rows.all())


def get_visible(user, job_id: int) -> Job:
    job = db.session.scalar(visible(user).where(Job.id == job_id))
    if job is None:
        raise NotFound("No such job.")
    return job


def attempts_of(job: Job) -> list[JobAttempt]:
    return list(
        db.session.scalars(
            select(JobAttempt).where(JobAttempt.job_id == job.id).order_by(JobAttempt.number.desc())
        )
    )


def retry(job: Job) -> Job:
    """Give a failed or cancelled job a fresh set of attempts."""
    if not job.can_retry:
        raise InvalidTransition(f"A {job.status} job cannot be retried.")
    old = job.status
    # Two retries at once must not queue the job twice.
    move(
        job,
        (old,),
        QUEUED,
        lambda found: f"A {found} job cannot be retried.",
        attempts=0,
        error=None,
        finished_at=None,
        sent_at=None,
    )
    dispatch.schedule_send(job)
    events.job_retried.send(
        job,
        action="job.retried",
        summary=f"Job {job.id} ({job.kind}) retried after {old}",
        project_id=job.project_id,
    )
    return job


def cancel(job: Job) -> Job:
    """Cancel a job that has not started; a message still in Redis will find it cancelled."""
    result = db.session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status.in_((QUEUED, RETRYING)))
        .values(status=CANCELLED, finished_at=utcnow(), next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise InvalidTransition("Only a queued or retrying job can be cancelled.")
    db.session.refresh(job)
    live.emit_job(job)
    events.job_cancelled.send(
        job,
        action="job.cancelled",
        summary=f"Job {job.id} ({job.kind}) cancelled",
        project_id=job.project_id,
    )
    return job


def run_diagnostic(user, *, fail_times: int = 0, project_id: int | None = None) -> Job:
    """A job that checks the pipeline end to end; it can be told to fail its first tries."""
    return dispatch.enqueue(
        DIAGNOSTIC.name,
        {"fail_times": max(0, min(fail_times, 10))},
        project_id=project_id,
        created_by_id=user.id,
        max_attempts=1 if fail_times else None,
    )


@dataclass
class SweepReport:
    resent: int = 0
    orphaned: int = 0


def sweep() -> SweepReport:
    """Re-send what was committed but never sent or was lost; recover jobs of dead workers.

    Safe to run anywhere and often: a duplicate message finds its job no longer claimable.
    """
    cfg = current_app.config
    now = utcnow()
    report = SweepReport()
    stale = now - timedelta(seconds=cfg["JOB_STALE_SECONDS"])
    orphans = db.session.scalars(
        select(Job)
        .where(Job.status == RUNNING, Job.started_at < stale)
        .with_for_update(skip_locked=True)
    ).all()
    recovered = []
    for job in orphans:
        job.error = "The worker running this job stopped before it finished."
        lifecycle.close_attempt(job.id, FAILED, job.error)
        if job.attempts < job.max_attempts:
            job.status = RETRYING
            job.next_attempt_at = now
            recovered.append((job.id, job.kind, job.queue))
        else:
            job.status = FAILED
            job.finished_at = now
        live.emit_job(job)
    report.orphaned = len(orphans)
    db.session.commit()
    dispatch.send_now(recovered)  # at once, not a sweep later

    unsent = now - timedelta(seconds=cfg["JOB_UNSENT_GRACE_SECONDS"])
    lost = now - timedelta(seconds=cfg["JOB_LOST_SECONDS"])
    due = db.session.execute(
        select(Job.id, Job.kind, Job.queue)
        .where(
            or_(
                and_(Job.status == QUEUED, Job.sent_at.is_(None), Job.created_at < unsent),
                and_(Job.status == QUEUED, Job.sent_at < lost),
                and_(Job.status == RETRYING, Job.next_attempt_at < now - timedelta(seconds=60)),
                and_(Job.status == RETRYING, Job.next_attempt_at.is_(None)),
            )
        )
        .limit(1000)
    ).all()
    db.session.commit()
    sent = dispatch.send_now([(j.id, j.kind, j.queue) for j in due])
    if sent:
        # Push the next re-send of a retrying job another grace period away.
        db.session.execute(
            update(Job)
            .where(Job.id.in_(sent), Job.status == RETRYING)
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    report.resent = len(sent)
    return report

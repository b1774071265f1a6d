"""Jobs as staff see them: listing within the user's scope, retry, cancel, and the sweeper."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Select, func, or_, select, update

from portal import events
from portal.errors import InvalidTransition, NotFound
from portal.extensions import db
from portal.jobs import dispatch, inbroker, lifecycle, live, problems
from portal.jobs.attention import worker_gone
from portal.jobs.broker import get_broker
from portal.jobs.kinds import CHAIN_CONFIRM, DIAGNOSTIC
from portal.jobs.models import (
    CANCELLED,
    FAILED,
    QUEUED,
    RETRYING,
    RUNNING,
    STATUS_LABELS,
    STATUSES,
    Job,
    JobAttempt,
)
from portal.projects import services as projects
from portal.timeutil import utcnow

# The Jobs page's filters: the statuses, and the running jobs whose worker is gone.
STUCK = "stuck"
FILTER_STATUSES = (*STATUSES, STUCK)


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
    if f.status == STUCK:
        query = query.where(worker_gone(utcnow()))
    elif f.status in STATUSES:
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
    """Jobs per status, and (as "stuck") the running ones whose worker is gone."""
    sub = visible(user).subquery()
    rows = db.session.execute(select(sub.c.status, func.count()).group_by(sub.c.status))
    gone = db.session.scalar(
        select(func.count()).select_from(visible(user).where(worker_gone(utcnow())).subquery())
    )
    return {status: 0 for status in FILTER_STATUSES} | dict(rows.all()) | {STUCK: gone}


def get_visible(user, job_id: int) -> Job:
    job = db.session.scalar(visible(user).where(Job.id == job_id))
    if job is None:
        raise NotFound(_("No such job."))
    return job


def attempts_of(job: Job) -> list[JobAttempt]:
    return list(
        db.session.scalars(
            select(JobAttempt).where(JobAttempt.job_id == job.id).order_by(JobAttempt.number.desc())
        )
    )


# Jobs that write to the chain: once one has run, a transaction of it may be in flight, and
# only the chain may decide what became of it (retrying is safe: the actors look first).
CHAIN_QUEUE = "contracts"


def retry(job: Job) -> Job:
    """Give a failed or cancelled job, or one whose worker is gone, a fresh set of attempts.

    One conditional UPDATE: two retries at once, a retry racing the sweeper or a late
    re-claim, queue it once; a job whose worker still renews its lease is never touched.
    """
    now = utcnow()
    old = job.status
    db.session.flush()
    result = db.session.execute(
        update(Job)
        .where(Job.id == job.id, or_(Job.status.in_((FAILED, CANCELLED)), worker_gone(now)))
        .values(
            status=QUEUED,
            attempts=0,
            error=None,
            problem=None,
            finished_at=None,
            next_attempt_at=None,
            sent_at=None,
            lease_token=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.refresh(job)
        raise InvalidTransition(_refusal(job, "retried"))
    if old == RUNNING:
        lifecycle.close_attempt(job.id, FAILED, lifecycle.WORKER_GONE)
    db.session.refresh(job)
    dispatch.schedule_send(job)
    events.job_retried.send(
        job,
        action="job.retried",
        summary=f"Job {job.id} ({job.kind}) retried after {old}",
        project_id=job.project_id,
    )
    return job


def _refusal(job: Job, verb: str) -> str:
    status = str(STATUS_LABELS.get(job.status, job.status))
    if verb == "retried":
        if job.status == RUNNING:
            return _("Job %(id)s is running on a live worker; it cannot be retried now.", id=job.id)
        return _("A %(status)s job cannot be retried.", status=status)
    if job.status == RUNNING:
        return _("Job %(id)s is running on a live worker; it cannot be cancelled now.", id=job.id)
    return _("A %(status)s job cannot be cancelled.", status=status)


def cancel(job: Job) -> Job:
    """Cancel a job that has not started or whose worker is gone; a message still in Redis
    will find it cancelled, and a late former holder cannot record over it (its lease token is
    gone). A chain job that has run once is refused: a transaction of it may be in flight."""
    if job.kind == CHAIN_CONFIRM.name:
        raise InvalidTransition(
            _(
                "Job %(id)s follows a chain transaction already signed: the chain decides its "
                "outcome, so it cannot be cancelled. Retry it if it is stuck.",
                id=job.id,
            )
        )
    if job.queue == CHAIN_QUEUE and job.attempts > 0:
        raise InvalidTransition(
            _(
                "Job %(id)s writes to the chain and has already run: a transaction of it may be "
                "on its way, and cancelling could lose its outcome. Retry it instead; the job "
                "checks the chain before doing anything again.",
                id=job.id,
            )
        )
    now = utcnow()
    old = job.status
    result = db.session.execute(
        update(Job)
        .where(
            Job.id == job.id,
            or_(Job.status.in_((QUEUED, RETRYING)), worker_gone(now)),
            # Checked again in the statement: the job may have run since it was read.
            *([Job.attempts == 0] if job.queue == CHAIN_QUEUE else []),
        )
        .values(
            status=CANCELLED,
            finished_at=now,
            next_attempt_at=None,
            lease_token=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.refresh(job)
        raise InvalidTransition(_refusal(job, "cancelled"))
    if old == RUNNING:
        lifecycle.close_attempt(job.id, CANCELLED, lifecycle.WORKER_GONE)
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


def recover_lost_leases(now) -> tuple[int, list[tuple[int, str, str]]]:
    """Running jobs whose lease expired (their worker is gone): back to retrying (or failed
    when out of attempts). Returns how many, and the (id, kind, queue) of the ones to send."""
    orphans = db.session.scalars(
        select(Job).where(worker_gone(now)).with_for_update(skip_locked=True)
    ).all()
    recovered = []
    for job in orphans:
        job.error = lifecycle.WORKER_GONE
        job.problem = problems.coded(problems.WORKER_GONE_CODE)
        job.lease_token = None
        job.lease_expires_at = None
        lifecycle.close_attempt(job.id, FAILED, job.error, job.problem)
        if job.attempts < job.max_attempts:
            job.status = RETRYING
            job.next_attempt_at = now
            recovered.append((job.id, job.kind, job.queue))
        else:
            job.status = FAILED
            job.finished_at = now
        live.emit_job(job)
    return len(orphans), recovered


def resend_missing(now) -> int:
    """Send again every queued or retrying job whose message the broker does not hold."""
    grace = now - timedelta(seconds=current_app.config["JOB_UNSENT_GRACE_SECONDS"])
    # The rows first, the broker second: a message taken and acknowledged in between makes a
    # duplicate, which finds its job no longer claimable; the other order could miss a loss.
    waiting = db.session.execute(
        select(Job.id, Job.kind, Job.queue, Job.next_attempt_at)
        .where(Job.status.in_((QUEUED, RETRYING)), Job.updated_at < grace)
        .order_by(Job.id)
        .limit(5000)
    ).all()
    db.session.commit()  # no transaction (nor connection) held while Redis is read
    if not waiting:
        return 0
    present = inbroker.job_ids(get_broker(), current_app.config["JOB_LEASE_SECONDS"])
    missing = [row for row in waiting if present is None or row.id not in present]
    by_delay: dict[int | None, list[tuple[int, str, str]]] = {}
    for row in missing:
        delay = None
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            delay = int((row.next_attempt_at - now).total_seconds() * 1000)
        by_delay.setdefault(delay, []).append((row.id, row.kind, row.queue))
    sent: list[int] = []
    for delay, jobs in by_delay.items():
        sent += dispatch.send_now(jobs, delay)
    if sent:
        db.session.execute(
            update(Job)
            .where(Job.id.in_(sent))
            .values(sent_at=now)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    return len(sent)


def sweep() -> SweepReport:
    """Recover the jobs of dead workers; send again what was committed but never sent or was
    lost with Redis's data.

    Safe to run anywhere and often: a duplicate message finds its job no longer claimable.
    """
    now = utcnow()
    report = SweepReport()
    report.orphaned, recovered = recover_lost_leases(now)
    db.session.commit()
    dispatch.send_now(recovered)  # at once, not a sweep later
    report.resent = resend_missing(now)
    return report

"""What a job looks like on the wire, and which rooms hear about it."""

from __future__ import annotations

from portal import realtime
from portal.jobs import problems
from portal.jobs.kinds import KINDS
from portal.jobs.models import Job

ALL_JOBS_ROOM = "jobs:all"


def project_jobs_room(project_id: int) -> str:
    return f"jobs:project:{project_id}"


def job_room(job_id: int) -> str:
    return f"job:{job_id}"


def serialize(job: Job) -> dict:
    kind = KINDS.get(job.kind)
    return {
        "id": job.id,
        "kind": job.kind,
        "label": str(kind.label) if kind else job.kind,
        "queue": job.queue,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        # The sentence, never the technical text: every job.read holder hears these events.
        "problem": job.problem_shown,
        # ... and its code and values, for a page to write it in the reader's language.
        **problems.wire(job.problem, job.error, job.id, job.attempts),
        "project_id": job.project_id,
        "created_by_id": job.created_by_id,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "updated_at": job.updated_at.isoformat() if job.updated_at else None,
        "next_attempt_at": job.next_attempt_at.isoformat() if job.next_attempt_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "worker_gone": job.worker_gone,
        "can_retry": job.can_retry,
        "can_cancel": job.can_cancel,
    }


def rooms_for(job: Job) -> list[str]:
    rooms = [job_room(job.id), ALL_JOBS_ROOM]
    if job.project_id:
        rooms.append(project_jobs_room(job.project_id))
    if job.created_by_id:
        rooms.append(realtime.user_room(job.created_by_id))
    return rooms


def emit_job(job: Job) -> None:
    """Announce the job's current state once the transaction that set it commits."""
    realtime.emit_after_commit(realtime.JOB_UPDATED, serialize(job), rooms_for(job))

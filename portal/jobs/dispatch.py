"""Sending job messages only after the transaction that wrote the Job row has committed.

``enqueue`` remembers the new job ids on the session; an ``after_commit`` listener sends them.
If Redis is unreachable the message simply is not there, and the sweeper, which looks for every
queued job's message in the broker (``portal.jobs.services.sweep``), sends it later: a job is
never lost and never sent before a worker could see its row.

The listener touches no database: it runs while the committing session still holds its
connection, and taking a second one there is what deadlocked a full pool (``portal.db_guard``).
"""

from __future__ import annotations

import json
import logging

import dramatiq
from flask import current_app
from flask_sqlalchemy.session import Session
from sqlalchemy import event

from portal.extensions import db
from portal.jobs import live
from portal.jobs.broker import get_broker
from portal.jobs.kinds import KINDS
from portal.jobs.models import QUEUED, Job

log = logging.getLogger(__name__)
_PENDING = "portal_pending_jobs"


def enqueue(
    kind_name: str,
    payload: dict | None = None,
    *,
    project_id: int | None = None,
    created_by_id: int | None = None,
    max_attempts: int | None = None,
    delay_ms: int | None = None,
) -> Job:
    """Record a job in the current transaction; its message goes out after commit (and after
    ``delay_ms`` more, for follow-ups that should look again later)."""
    kind = KINDS[kind_name]
    job = Job(
        kind=kind.name,
        queue=kind.queue,
        status=QUEUED,
        payload_json=json.dumps(payload or {}, separators=(",", ":"), sort_keys=True),
        max_attempts=max_attempts or kind.max_attempts or current_app.config["JOB_MAX_ATTEMPTS"],
        project_id=project_id,
        created_by_id=created_by_id,
    )
    db.session.add(job)
    db.session.flush()
    schedule_send(job, delay_ms)
    return job


def schedule_send(job: Job, delay_ms: int | None = None) -> None:
    """Send this job's message after the current transaction commits."""
    db.session.info.setdefault(_PENDING, {})[job.id] = (job.kind, job.queue, delay_ms)
    live.emit_job(job)


def message_for(job_id: int, kind: str, queue: str) -> dramatiq.Message:
    return dramatiq.Message(
        queue_name=queue, actor_name=kind, args=(job_id,), kwargs={}, options={}
    )


def send_now(jobs: list[tuple[int, str, str]], delay_ms: int | None = None) -> list[int]:
    """Send messages for (id, kind, queue) triples. Returns the sent ids; nothing is written
    (a caller that keeps the time, the sweeper, writes it on its own session)."""
    broker = get_broker()
    sent: list[int] = []
    for job_id, kind, queue in jobs:
        try:
            broker.enqueue(message_for(job_id, kind, queue), delay=delay_ms)
            sent.append(job_id)
        except Exception:  # the sweeper will try again; the row is the truth
            log.warning("could not send job %s; it stays unsent for the sweeper", job_id)
    return sent


@event.listens_for(Session, "after_commit")
def _send_after_commit(session) -> None:
    if session.in_nested_transaction():  # a SAVEPOINT released: nothing is committed yet
        return
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    by_delay: dict[int | None, list[tuple[int, str, str]]] = {}
    for job_id, (kind, queue, delay_ms) in pending.items():
        by_delay.setdefault(delay_ms, []).append((job_id, kind, queue))
    for delay_ms, jobs in by_delay.items():
        send_now(jobs, delay_ms)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session) -> None:
    # A savepoint rolled back (``transactions.attempt``): the outer transaction and the jobs
    # it recorded go on. A message for a job row that was undone is skipped by the claim.
    if not session.in_nested_transaction():
        session.info.pop(_PENDING, None)

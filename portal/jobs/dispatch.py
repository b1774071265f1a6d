"""Sending job messages only after the transaction that wrote the Job row has committed.

``enqueue`` remembers the new job ids on the session; an ``after_commit`` listener sends them.
If Redis is unreachable the message simply is not there, and the sweeper, which looks for every
queued job's message in the broker (``portal.jobs.services.sweep``), sends it later: a job is
never lost and never sent before a worker could see its row.

The listener touches no database: it runs while the committing session still holds its
connection, and taking a second one there is what deadlocked a full pool (``portal.db_guard``).

A job enqueued with ``here=True`` by a job that runs on a worker thread (a transaction's
follow-up, whose answer the same thread can wait for) skips the broker: the worker thread runs
it next, through the same claim and lease as a delivered message (``workers.middleware``), which
saves a hop through Redis and the queue. Anywhere else (a web request, the sweeper) its message
is sent as usual; a worker that dies before running it leaves a queued job without a message,
which the sweeper sends.
"""

from __future__ import annotations

import json
import logging
import threading
from contextlib import contextmanager

import dramatiq
from flask import current_app
from flask_sqlalchemy.session import Session
from sqlalchemy import event, insert

from portal.extensions import db
from portal.jobs import live
from portal.jobs.broker import get_broker
from portal.jobs.kinds import KINDS
from portal.jobs.models import QUEUED, Job

log = logging.getLogger(__name__)
_PENDING = "portal_pending_jobs"
# Per thread: the jobs this worker thread runs next, once its current job is recorded.
_here = threading.local()


def enqueue(
    kind_name: str,
    payload: dict | None = None,
    *,
    project_id: int | None = None,
    created_by_id: int | None = None,
    max_attempts: int | None = None,
    delay_ms: int | None = None,
    here: bool = False,
) -> Job:
    """Record a job in the current transaction; its message goes out after commit (and after
    ``delay_ms`` more, for follow-ups that should look again later). ``here``: on a worker
    thread, the thread runs it next instead (see the module doc)."""
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
    schedule_send(job, delay_ms, here=here and not delay_ms)
    return job


def enqueue_many(
    kind_name: str,
    payloads: list[dict],
    *,
    project_id: int | None = None,
    created_by_id: int | None = None,
    delays_ms: list[int] | None = None,
) -> list[int]:
    """Record one job per payload in one multi-row INSERT; their messages go out after commit,
    like ``enqueue``'s (each ``delays_ms[i]`` later, when given). The ids, in the order of
    ``payloads``.

    For work made by the thousand (a campaign's messages): no Job objects are loaded and no
    per-job live event is sent (the jobs page shows them on its next load).
    """
    if not payloads:
        return []
    kind = KINDS[kind_name]
    attempts = kind.max_attempts or current_app.config["JOB_MAX_ATTEMPTS"]
    rows = [
        {
            "kind": kind.name,
            "queue": kind.queue,
            "status": QUEUED,
            "payload_json": json.dumps(payload, separators=(",", ":"), sort_keys=True),
            "max_attempts": attempts,
            "project_id": project_id,
            "created_by_id": created_by_id,
        }
        for payload in payloads
    ]
    ids = list(
        db.session.scalars(
            insert(Job).returning(Job.id, sort_by_parameter_order=True),
            rows,
        )
    )
    pending = db.session.info.setdefault(_PENDING, {})
    delays = delays_ms or [None] * len(ids)
    for job_id, delay in zip(ids, delays, strict=True):
        pending[job_id] = (kind.name, kind.queue, delay or None, False)
    return ids


def schedule_send(job: Job, delay_ms: int | None = None, *, here: bool = False) -> None:
    """Send this job's message after the current transaction commits (or, with ``here`` on a
    worker thread that takes jobs to run next, hand it to that thread)."""
    db.session.info.setdefault(_PENDING, {})[job.id] = (job.kind, job.queue, delay_ms, here)
    live.emit_job(job)


def collect_here() -> None:
    """From now on this worker thread takes the ``here`` jobs that commit on it (see
    ``taken_here``) instead of sending their messages."""
    _here.jobs = []


def taken_here() -> list[tuple[int, str, str]]:
    """The (id, kind, queue) of the ``here`` jobs committed since the last call: the caller
    runs them."""
    jobs = getattr(_here, "jobs", None) or []
    if jobs:
        _here.jobs = []
    return jobs


def stop_collecting_here() -> None:
    """This thread takes no more jobs; any not run yet get their messages as usual."""
    left = getattr(_here, "jobs", None)
    _here.jobs = None
    if left:
        send_now(left)


def running_here() -> bool:
    """Whether the job running on this thread was handed over in place of its message."""
    return bool(getattr(_here, "running", False))


@contextmanager
def running_one_here():
    _here.running = True
    try:
        yield
    finally:
        _here.running = False


def message_for(
    job_id: int, kind: str, queue: str, options: dict | None = None
) -> dramatiq.Message:
    return dramatiq.Message(
        queue_name=queue, actor_name=kind, args=(job_id,), kwargs={}, options=dict(options or {})
    )


# The options of the message being run on this worker thread that a handler may read: what an
# earlier run of the same job took for this one (``lifecycle.RunLater``), e.g. a send slot.
DELIVERY_OPTIONS = ("send_slot",)


def deliver_with(options: dict | None) -> None:
    """The worker's middleware: the message this thread runs now carries ``options``."""
    _here.delivery = {k: v for k, v in (options or {}).items() if k in DELIVERY_OPTIONS}


def delivery_options() -> dict:
    """What the message being run on this thread carries for its handler (empty elsewhere)."""
    return getattr(_here, "delivery", None) or {}


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
    taker = getattr(_here, "jobs", None)
    for job_id, (kind, queue, delay_ms, here) in pending.items():
        if here and taker is not None:
            taker.append((job_id, kind, queue))
            continue
        by_delay.setdefault(delay_ms, []).append((job_id, kind, queue))
    for delay_ms, jobs in by_delay.items():
        send_now(jobs, delay_ms)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session) -> None:
    # A savepoint rolled back (``transactions.attempt``): the outer transaction and the jobs
    # it recorded go on. A message for a job row that was undone is skipped by the claim.
    if not session.in_nested_transaction():
        session.info.pop(_PENDING, None)

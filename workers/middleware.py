"""Dramatiq middleware that gives each message an app context and drives its Job row."""

from __future__ import annotations

import logging
import threading

import dramatiq
from dramatiq.middleware import SkipMessage

from portal import db_pool
from portal.extensions import db
from portal.jobs import dispatch, leases, lifecycle
from portal.jobs.dispatch import message_for

log = logging.getLogger(__name__)
_SKIPPED = "Message %s was skipped."


class _ExpectedSkips(logging.Filter):
    """Dramatiq warns on every skipped message. Here a skip is the normal end of a duplicate
    delivery (the job finished, was cancelled, or another worker holds its lease: leases make
    that harmless), so the warning read as a failure, e.g. at every `make run` start after
    seed-demo ran its chain jobs in-process. The middleware logs its own debug line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _SKIPPED


def _quiet_expected_skips() -> None:
    worker_log = logging.getLogger("dramatiq.worker.WorkerThread")
    if not any(isinstance(f, _ExpectedSkips) for f in worker_log.filters):
        worker_log.addFilter(_ExpectedSkips())


# Jobs handed to the thread (``dispatch.enqueue(here=True)``) may hand over jobs in turn; past
# this many rounds the rest go through the broker.
HERE_ROUNDS = 4


class JobLifecycle(dramatiq.Middleware):
    """Before: push an app context and claim the job's lease (skip if it may not run).
    After: record success, or the failure with a delayed re-send while attempts remain, or
    (``lifecycle.RunLater``) the job back in the queue with its message sent again for later,
    no attempt used; all only while this run still holds the lease. Then run the jobs this one
    handed to its thread (``dispatch.enqueue(here=True)``: a transaction's follow-up), each
    claimed like a message.

    The worker process's lease heartbeat starts with the worker and stops with it."""

    def __init__(self, app):
        self.app = app
        self.heartbeat = leases.for_app(app)
        self._local = threading.local()
        _quiet_expected_skips()

    def after_worker_boot(self, broker, worker):
        db_pool.check_worker_pool(self.app, worker.worker_threads)
        self.heartbeat.start()

    def before_worker_shutdown(self, broker, worker):
        self.heartbeat.stop()

    def _push(self):
        ctx = self.app.app_context()
        ctx.push()
        self._local.ctx = ctx

    def _pop(self):
        ctx = getattr(self._local, "ctx", None)
        dispatch.deliver_with(None)
        if ctx is not None:
            self._local.job = None
            db.session.remove()
            ctx.pop()
            self._local.ctx = None

    def before_process_message(self, broker, message):
        dispatch.collect_here()
        self._push()
        dispatch.deliver_with(message.options)
        self._local.token = None
        job = lifecycle.claim(message.args[0], leases.worker_id(), message.actor_name)
        if job is None:
            log.debug("job %s is not claimable here: delivery skipped", message.args[0])
            raise SkipMessage()
        self._local.token = job.lease_token
        # The session keeps objects only while someone refers to them: held here, the claimed
        # row is the handler's ``db.session.get`` without reading it again.
        self._local.job = job
        self.heartbeat.hold(job.id, job.lease_token)

    def after_skip_message(self, broker, message):
        self._pop()
        dispatch.stop_collecting_here()

    def after_process_message(self, broker, message, *, result=None, exception=None):
        try:
            self._record(broker, message.args[0], exception)
        finally:
            self._pop()
        self._run_handed_over(broker)

    def _record(self, broker, job_id: int, exception: BaseException | None) -> None:
        token = getattr(self._local, "token", None)
        try:
            # Before the outcome is written: the heartbeat must not take a finished job for
            # one whose lease was taken over.
            self.heartbeat.release(token)
            if exception is None:
                lifecycle.succeed(job_id, token)
                return
            if isinstance(exception, lifecycle.RunLater):
                job = lifecycle.later(job_id, exception, token)
                if job is not None:
                    broker.enqueue(
                        message_for(job.id, job.kind, job.queue, exception.options),
                        delay=exception.delay_ms,
                    )
                return
            job, delay = lifecycle.fail(job_id, exception, token)
            if delay is not None:
                broker.enqueue(message_for(job.id, job.kind, job.queue), delay=delay)
        finally:
            self._local.token = None

    def _run_handed_over(self, broker) -> None:
        try:
            for _ in range(HERE_ROUNDS):
                jobs = dispatch.taken_here()
                if not jobs:
                    return
                for job_id, kind, _queue in jobs:
                    self._run_here(broker, job_id, kind)
        finally:
            dispatch.stop_collecting_here()  # what is left goes through the broker

    def _run_here(self, broker, job_id: int, kind: str) -> None:
        """One handed-over job, as a delivered message would run it: claimed under a lease (a
        duplicate delivery, or the sweeper, finds it taken), recorded the same way."""
        self._push()
        try:
            job = lifecycle.claim(job_id, leases.worker_id(), kind)
            if job is None:
                return
            self._local.token = job.lease_token
            self._local.job = job
            self.heartbeat.hold(job.id, job.lease_token)
            error = None
            try:
                with dispatch.running_one_here():
                    broker.get_actor(kind).fn(job_id)
            except Exception as exc:  # recorded on the job like a delivered message's
                error = exc
            self._record(broker, job_id, error)
        except Exception:
            # Left queued (no message: the sweeper sends it) or running under a lease that
            # expires: either way it runs again.
            log.exception("job %s handed to this thread could not run here", job_id)
        finally:
            self._pop()

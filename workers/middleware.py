"""Dramatiq middleware that gives each message an app context and drives its Job row."""

from __future__ import annotations

import threading

import dramatiq
from dramatiq.middleware import SkipMessage

from portal.extensions import db
from portal.jobs import lifecycle
from portal.jobs.dispatch import message_for


class JobLifecycle(dramatiq.Middleware):
    """Before: push an app context and claim the job (skip if it may not run).
    After: record success, or the failure with a delayed re-send while attempts remain."""

    def __init__(self, app):
        self.app = app
        self._local = threading.local()

    def _push(self):
        ctx = self.app.app_context()
        ctx.push()
        self._local.ctx = ctx

    def _pop(self):
        ctx = getattr(self._local, "ctx", None)
        if ctx is not None:
            db.session.remove()
            ctx.pop()
            self._local.ctx = None

    def before_process_message(self, broker, message):
        self._push()
        if lifecycle.claim(message.args[0]) is None:
            raise SkipMessage()

    def after_skip_message(self, broker, message):
        self._pop()

    def after_process_message(self, broker, message, *, result=None, exception=None):
        try:
            job_id = message.args[0]
            if exception is None:
                lifecycle.succeed(job_id)
                return
            job, delay = lifecycle.fail(job_id, exception)
            if delay is not None:
                broker.enqueue(message_for(job.id, job.kind, job.queue), delay=delay)
        finally:
            self._pop()

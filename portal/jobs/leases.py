"""The leases a worker process holds on the jobs it runs, and the heartbeat that renews them.

A claim (``lifecycle.claim``) writes a fresh token, this process's id and an expiry into the
job row. While the job runs, one heartbeat thread per process renews the expiry of every lease
the process holds, every JOB_HEARTBEAT_SECONDS, with one UPDATE conditional on the tokens. When
the process dies (kill -9, a lost machine) nothing renews them: once expired, a redelivered
message or the sweeper runs the job again.

A lease can also be lost while its holder still runs (the database was unreachable from it for
longer than the lease, a paused VM): the heartbeat finds its token gone and interrupts the
job's thread. Even if that comes too late, the holder cannot record anything: success and
failure are conditional on the token, and a refused one rolls back the job's own work.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta

from dramatiq.middleware.threading import raise_thread_exception
from flask import Flask
from sqlalchemy import select, update

from portal.extensions import db
from portal.jobs.models import RUNNING, Job
from portal.timeutil import utcnow

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """Raised in a job's thread when another claim took its job over."""


def worker_id() -> str:
    """This process, as the Jobs page names the holder of a lease."""
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def expiry(app_config) -> object:
    return utcnow() + timedelta(seconds=app_config["JOB_LEASE_SECONDS"])


class Heartbeat:
    """The leases of one process, and the thread that keeps them alive."""

    def __init__(self, app: Flask):
        self.app = app
        self._lock = threading.Lock()
        self._held: dict[str, tuple[int, int]] = {}  # token -> (job id, thread ident)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, job_id: int, token: str) -> None:
        with self._lock:
            self._held[token] = (job_id, threading.get_ident())

    def release(self, token: str | None) -> None:
        with self._lock:
            self._held.pop(token, None)

    def held(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            return dict(self._held)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="job-lease-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.app.config["JOB_HEARTBEAT_SECONDS"]):
            try:
                self.renew()
            except Exception:  # the next beat tries again; the lease has slack for one miss
                log.warning("could not renew job leases", exc_info=True)

    def renew(self) -> list[int]:
        """Extend every lease still ours; interrupt the jobs whose lease was taken over.
        Returns the ids of the jobs lost."""
        held = self.held()
        if not held:
            return []
        with self.app.app_context():
            try:
                tokens = list(held)
                db.session.execute(
                    update(Job)
                    .where(Job.lease_token.in_(tokens), Job.status == RUNNING)
                    .values(lease_expires_at=expiry(self.app.config))
                    .execution_options(synchronize_session=False)
                )
                still = set(
                    db.session.scalars(
                        select(Job.lease_token).where(
                            Job.lease_token.in_(tokens), Job.status == RUNNING
                        )
                    )
                )
                db.session.commit()
            finally:
                db.session.remove()
        lost = []
        for token in set(held) - still:
            job_id, thread_ident = held[token]
            with self._lock:
                # Released since our read (the job finished, or failed): nothing to interrupt.
                # Under the lock, so the thread cannot release it and move on to another job
                # between this check and the interruption.
                if self._held.pop(token, None) is None:
                    continue
                raise_thread_exception(thread_ident, LeaseLost)
            lost.append(job_id)
            log.warning("job %s: the lease was taken over; this run was stopped", job_id)
        return lost


def for_app(app: Flask) -> Heartbeat:
    found = app.extensions.get("job_leases")
    if found is None:
        found = app.extensions.setdefault("job_leases", Heartbeat(app))
    return found

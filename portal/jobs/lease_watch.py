"""Tells open Jobs pages when a running job's lease expires: its worker is gone.

Nothing changes in the database at that moment (the job is still "running", only its lease is
out of date), so no commit carries an event. The sweeper of a live worker process takes such a
job back within ``SWEEP_INTERVAL_SECONDS`` and announces it as retrying; but when every worker
process is down (Dramatiq stops the others when one dies, until the process manager restarts
them) nobody sweeps, and the page kept saying "running" until a reload.

So the finding itself is announced: the jobs whose lease expired since the last look go out as
``job.updated`` with ``worker_gone`` true, the event the Jobs list and job pages already follow.
A web process with a Jobs page open (a ``jobs`` or ``job`` subscription in the last
``IDLE_SECONDS``) looks every ``JOB_LEASE_WATCH_SECONDS`` on a thread of its own: one indexed
query on (status, lease expiry). When a sweeper then takes the job back, its "retrying" follows
as before.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import select

from portal import realtime
from portal.extensions import db
from portal.jobs import live
from portal.jobs.models import RUNNING, Job
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

IDLE_SECONDS = 600  # no Jobs page subscribed for this long: the thread ends
LIMIT = 500  # jobs announced per look (a crash of many at once: the rest on the next look)


def announce_expired(since: datetime, now: datetime) -> datetime:
    """Send ``job.updated`` for every running job whose lease expired in (since, now]; returns
    where the next look starts (``now``, or the last expiry sent when there were more)."""
    found = db.session.scalars(
        select(Job)
        .where(
            Job.status == RUNNING,
            Job.lease_expires_at > since,
            Job.lease_expires_at <= now,
        )
        .order_by(Job.lease_expires_at)
        .limit(LIMIT)
    ).all()
    for job in found:
        realtime.emit(realtime.JOB_UPDATED, live.serialize(job), live.rooms_for(job))
    return found[-1].lease_expires_at if len(found) == LIMIT else now


class LeaseWatch:
    """One per app and web process, started by a Jobs page's subscription."""

    def __init__(self, app: Flask):
        self.app = app
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wanted_until = 0.0
        self.since: datetime | None = None

    def wanted(self) -> None:
        """A Jobs page subscribed: keep looking for a while."""
        if self.app.config.get("JOB_LEASE_WATCH_SECONDS", 0) <= 0:
            return
        with self._lock:
            self._wanted_until = time.monotonic() + IDLE_SECONDS
            if self._thread is None:
                # Leases that expired before anyone looked are on the page already (its
                # snapshot is read now): only later expiries need announcing.
                self.since = utcnow()
                self._thread = threading.Thread(target=self._run, name="lease-watch", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        every = self.app.config["JOB_LEASE_WATCH_SECONDS"]
        while True:
            time.sleep(every)
            with self._lock:
                if time.monotonic() > self._wanted_until:
                    self._thread = None
                    return
            self.look()

    def look(self, now: datetime | None = None) -> None:
        now = now or utcnow()
        every = max(self.app.config["JOB_LEASE_WATCH_SECONDS"], 1)
        since = self.since or now - timedelta(seconds=every)
        with self.app.app_context():
            try:
                self.since = announce_expired(since, now)
                db.session.commit()
            except Exception:  # the next look covers the same span again
                log.warning("could not look for expired job leases", exc_info=True)
            finally:
                db.session.remove()


def for_app(app: Flask) -> LeaseWatch:
    found = app.extensions.get("job_lease_watch")
    if found is None:
        found = app.extensions.setdefault("job_lease_watch", LeaseWatch(app))
    return found

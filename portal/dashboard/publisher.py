"""Reads and sends fresh snapshots outside the thread that committed.

The committing thread hands over the projects it touched and returns at once, so a vendor's
phone never waits for the dashboard's aggregates (on PostgreSQL about 120 ms for a project with
100,000 redemptions, which the screen must scan for its vendor totals and feed). One thread per
app and process does the work. What arrives while it works joins its next round, and rounds are
at least ``MIN_GAP`` apart: a burst of commits to one project costs a few snapshots, not one
each, and the screen is current within ``MIN_GAP`` plus one aggregate.

Every snapshot is read after the commits it answers, so it includes them and any that came
before; an extra one is harmless, and the last one a screen gets is current.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from sqlalchemy.engine import Engine

from portal import realtime
from portal.dashboard import changes, snapshot
from portal.extensions import db

log = logging.getLogger(__name__)

DASHBOARD_UPDATED = "dashboard.snapshot"
MIN_GAP = 0.2  # seconds between rounds
IDLE_SECONDS = 60  # an idle thread ends; the next commit starts another

_create_lock = threading.Lock()


def room(project_id: int) -> str:
    return f"dashboard:{project_id}"


def send(engine: Engine, projects: set[int], lookups: dict[str, set]) -> None:
    """Read each touched project's snapshot and send it to its room."""
    try:
        with engine.connect() as conn:
            if lookups:
                projects = projects | changes.resolve(conn, lookups)
            for project_id in sorted(projects):
                data = snapshot.build(conn, project_id)
                realtime.emit(DASHBOARD_UPDATED, data, [room(project_id)])
    except Exception:  # the commit stands; the next change or a reconnect catches the screen up
        log.warning("could not refresh the dashboard", exc_info=True)


def shares_one_connection(engine: Engine) -> bool:
    """In-memory SQLite (the unit tests) is one connection for every thread: a refresh from
    another thread would run inside the caller's transaction, so there it runs inline."""
    return engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")


class Publisher:
    def __init__(self, app: Flask):
        self.app = app
        self._projects: set[int] = set()
        self._lookups: dict[str, set] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def request(self, projects: set[int], lookups: dict[str, set]) -> None:
        with self._wake:
            self._projects |= projects
            for name, ids in lookups.items():
                self._lookups.setdefault(name, set()).update(ids)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="dashboard-publisher", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _next_round(self) -> tuple[set[int], dict[str, set]] | None:
        with self._wake:
            while not (self._projects or self._lookups):
                if not self._wake.wait(IDLE_SECONDS):
                    self._thread = None
                    return None
            taken = (self._projects, self._lookups)
            self._projects, self._lookups = set(), {}
            return taken

    def _run(self) -> None:
        while (taken := self._next_round()) is not None:
            started = time.monotonic()
            with self.app.app_context():
                send(db.engine, *taken)
            time.sleep(max(0.0, MIN_GAP - (time.monotonic() - started)))


def for_app(app: Flask) -> Publisher:
    found = app.extensions.get("dashboard_publisher")
    if found is None:
        with _create_lock:
            found = app.extensions.setdefault("dashboard_publisher", Publisher(app))
    return found

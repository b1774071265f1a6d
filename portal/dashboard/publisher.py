"""Builds and sends fresh snapshots outside the thread that committed, once per change for
every process together.

The committing thread hands over the projects it touched and returns at once: no snapshot, no
Redis call and no database connection in the commit hook. One thread per app and process does
the rest. Per round it takes a change number for each touched project (``shared``), then either
finds a snapshot already sent that covers it (another process built one after this commit),
or builds one when it holds the project's claim, stores it for page loads and subscribes, and
sends it to the room ``dashboard:<project_id>`` through ``realtime.emit`` (Redis carries it to
every web process). A project whose claim is held elsewhere is looked at again shortly, until
a snapshot covers its change. What arrives meanwhile joins the next round.

So a burst of commits to one project, in any number of processes, costs about one snapshot
per ``shared.MIN_GAP``; each costs a few milliseconds whatever the number of redemptions.

The thread checks a database connection out of the pool only to build or to map row ids to
projects, and gives it back at the end of the round: the pool needs one connection more than
the request and job threads use.
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack

from flask import Flask
from sqlalchemy.engine import Connection, Engine

from portal import realtime
from portal.dashboard import changes, shared, snapshot
from portal.extensions import db

log = logging.getLogger(__name__)

DASHBOARD_UPDATED = "dashboard.snapshot"
RETRY_SECONDS = shared.MIN_GAP / 2  # how soon a project built elsewhere is looked at again
IDLE_SECONDS = 60  # an idle thread ends; the next commit starts another

_create_lock = threading.Lock()


def room(project_id: int) -> str:
    return f"dashboard:{project_id}"


class _LazyConnection:
    """A connection checked out only when a round needs the database."""

    def __init__(self, engine: Engine, stack: ExitStack):
        self.engine, self.stack, self.conn = engine, stack, None

    def __call__(self) -> Connection:
        if self.conn is None:
            self.conn = self.stack.enter_context(self.engine.connect())
            if self.engine.dialect.name == "postgresql":
                # Every part of one snapshot read as of one moment.
                self.conn = self.conn.execution_options(isolation_level="REPEATABLE READ")
        return self.conn


def build_and_send(store, conn: Connection, project_id: int, version: int) -> dict:
    data = snapshot.build(conn, project_id)
    conn.rollback()  # end the read: the next project's snapshot sees later commits
    try:
        shared.publish(store, project_id, version, data)
    except Exception:  # the room still hears it; page loads fall back to building
        log.warning("could not store the dashboard snapshot", exc_info=True)
    realtime.emit(DASHBOARD_UPDATED, data, [room(project_id)])
    return data


def send(app: Flask, engine: Engine, projects: set[int], lookups: dict[str, set]) -> None:
    """Build and send each touched project's snapshot now (one connection shared by every
    thread, in-memory SQLite: the unit tests). No claim: each commit gets its snapshot."""
    try:
        store = shared.store_for(app, engine)
        with engine.connect() as conn:
            if lookups:
                projects = projects | changes.resolve(conn, lookups)
            for project_id in sorted(projects):
                build_and_send(store, conn, project_id, store.note_change(project_id))
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
        # Projects counted but not yet covered by a sent snapshot: {project: change number}.
        self._waiting: dict[int, int] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self.builds = 0  # snapshots this process built (for tests and the bench)

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
                if self._waiting:
                    self._wake.wait(RETRY_SECONDS)
                    break
                if not self._wake.wait(IDLE_SECONDS) and not (self._projects or self._lookups):
                    self._thread = None
                    return None
            taken = (self._projects, self._lookups)
            self._projects, self._lookups = set(), {}
            return taken

    def _run(self) -> None:
        while (taken := self._next_round()) is not None:
            with self.app.app_context():
                try:
                    self._round(db.engine, *taken)
                except Exception:  # the commit stands; the next change catches the screen up
                    log.warning("could not refresh the dashboard", exc_info=True)
                    self._waiting.clear()

    def _round(self, engine: Engine, projects: set[int], lookups: dict[str, set]) -> None:
        store = shared.store_for(self.app, engine)
        with ExitStack() as stack:
            connect = _LazyConnection(engine, stack)
            if lookups:
                projects = projects | changes.resolve(connect(), lookups)
                connect().rollback()
            try:
                self._shared_round(store, connect, projects)
            except Exception:  # the store (Redis) is away: every process sends its own
                log.warning("the dashboard store failed; sending unshared", exc_info=True)
                for project_id in sorted(projects | set(self._waiting)):
                    data = snapshot.build(connect(), project_id)
                    connect().rollback()
                    realtime.emit(DASHBOARD_UPDATED, data, [room(project_id)])
                    self.builds += 1
                self._waiting.clear()

    def _shared_round(self, store, connect, projects: set[int]) -> None:
        for project_id in projects:
            # One number per project and round, however many commits it stands for.
            self._waiting[project_id] = store.note_change(project_id)
        for project_id, needed in sorted(self._waiting.items()):
            if store.published(project_id) >= needed:
                del self._waiting[project_id]  # someone built after this commit
            elif store.claim(project_id):
                version = store.changes(project_id)  # read before the build: it covers these
                del self._waiting[project_id]
                try:
                    build_and_send(store, connect(), project_id, version)
                    self.builds += 1
                except Exception:  # the next change or a reconnect catches the screen up
                    log.warning("could not refresh the dashboard", exc_info=True)


def for_app(app: Flask) -> Publisher:
    found = app.extensions.get("dashboard_publisher")
    if found is None:
        with _create_lock:
            found = app.extensions.setdefault("dashboard_publisher", Publisher(app))
    return found

"""A guard that refuses a second pooled connection in a thread that already holds one.

A request or a job runs in one thread (or greenlet) and uses its session's connection. A code
path that checks out another connection while that one is held (``db.engine.begin()`` in an
``after_commit`` hook, a helper that opens its own ``engine.connect()``) waits for the pool
while holding it: with every thread doing so at once, the pool is exhausted and they all wait
for each other (what took 16 vendors charging at once down to 1 charge/s with 30 s waits).

``DB_CONNECTION_GUARD`` = "raise" (tests, the integration stacks) makes such a checkout fail
loudly where it happens; "log" only logs it; unset does nothing. Threads that exist to hold a
connection of their own (the sweeper, the lease heartbeat, the dashboard publisher, an
import's read-ahead) are different threads and hold one each, as ``portal.db_pool`` counts.
"""

from __future__ import annotations

import logging
import threading
import traceback

from flask.globals import _cv_app
from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


class SecondConnection(RuntimeError):
    """A thread asked the pool for a connection while it held one already."""


class OneConnectionGuard:
    def __init__(self, mode: str):
        self.mode = mode
        self._lock = threading.Lock()
        self._owner: dict[int, tuple] = {}  # id(connection record) -> scope
        self._held: dict[tuple, int] = {}  # scope -> connections held
        self.violations: list[str] = []

    def install(self, engine: Engine) -> None:
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)

    def _checkout(self, dbapi_connection, record, proxy) -> None:
        me = _scope()
        with self._lock:
            held = self._held.get(me, 0)
            self._owner[id(record)] = me
            self._held[me] = held + 1
        if held:
            where = "".join(traceback.format_stack(limit=30)[:-2])
            message = f"thread {threading.current_thread().name} took a second connection:\n{where}"
            self.violations.append(message)
            log.error("%s", message)
            if self.mode == "raise":
                # Give it back first, so the refusal does not leak a connection.
                self._checkin(dbapi_connection, record)
                raise SecondConnection(message)

    def _checkin(self, dbapi_connection, record) -> None:
        with self._lock:
            owner = self._owner.pop(id(record), None)
            if owner is None:
                return
            left = self._held.get(owner, 1) - 1
            if left > 0:
                self._held[owner] = left
            else:
                self._held.pop(owner, None)

    def held_by_current_thread(self) -> int:
        return self._held.get(_scope(), 0)


def _scope() -> tuple:
    """A thread (or greenlet) within one app context: what one request or one job is. Flask-
    SQLAlchemy gives each app context its own session, so a test that holds a session while
    it drives a request in the same thread is two scopes, as two requests would be."""
    ctx = _cv_app.get(None)
    return (threading.get_ident(), id(ctx) if ctx is not None else None)


def install(app) -> OneConnectionGuard | None:
    mode = (app.config.get("DB_CONNECTION_GUARD") or "").lower()
    if mode not in ("raise", "log"):
        return None
    guard = OneConnectionGuard(mode)
    from portal.extensions import db

    with app.app_context():
        for engine in db.engines.values():
            guard.install(engine)
    app.extensions["db_guard"] = guard
    return guard

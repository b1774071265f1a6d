"""Keeps open dashboards current, and lets a (re)connecting screen catch up.

After a commit that changed a project's redemptions, entitlements, chain transactions,
allocation batches or jobs (see ``changes``), a fresh snapshot of that project goes to the room
``dashboard:<project_id>`` (see ``publisher``). It goes through ``realtime.emit``, so a worker
process publishes it to Redis like any other live event and every web process passes it on.
A commit that touched none of those rows costs nothing; a rolled-back one sends nothing.

A browser subscribes to the topic ``dashboard`` and gets the full snapshot as the answer: the
one stored for everybody (``shared``), built only when none is.
"""

from __future__ import annotations

import logging

from flask import current_app
from flask_sqlalchemy.session import Session
from sqlalchemy import event

from portal import realtime
from portal.dashboard import changes, publisher, shared
from portal.errors import NotFound
from portal.extensions import db
from portal.projects import services as projects

log = logging.getLogger(__name__)

DASHBOARD_UPDATED = publisher.DASHBOARD_UPDATED
TOPIC = "dashboard"
PERMISSION = "dashboard.read"
room = publisher.room


def _after_commit(sess) -> None:
    if sess.in_nested_transaction():  # a SAVEPOINT released: nothing is committed yet
        return
    touched, lookups = changes.take(sess)
    if not touched and not lookups:
        return
    try:
        engine = sess.get_bind()
        app = current_app._get_current_object()
        if publisher.shares_one_connection(engine):
            publisher.send(app, engine, touched, lookups)
        else:
            # Hand over and return: no connection, no Redis call while the request holds its own.
            publisher.for_app(app).request(touched, lookups)
    except Exception:  # never fail a commit that has already happened
        log.warning("could not refresh the dashboard", exc_info=True)


def _after_rollback(sess) -> None:
    if not sess.in_nested_transaction():  # a savepoint's rollback: a refresh too many is harmless
        changes.forget(sess)


def connect() -> None:
    """Listen on every Flask-SQLAlchemy session; calling it again (one app per test) is a no-op."""
    for name, fn in (
        ("after_flush", changes.after_flush),
        ("do_orm_execute", changes.on_execute),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    ):
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)


@realtime.topic(TOPIC, PERMISSION)
def dashboard_topic(user, params: dict):
    try:
        project = projects.get_visible(user, realtime.id_param(params, "project_id"))
    except NotFound:
        raise LookupError("no such project") from None
    return [room(project.id)], current(project.id)


def current(project_id: int) -> dict:
    """The shared snapshot (``shared``), built on this request's connection if none is stored."""
    store = shared.store_for(current_app._get_current_object(), db.engine)
    return shared.current(store, db.session.connection, project_id)

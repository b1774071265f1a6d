"""One transaction per request: framework code commits after the view and rolls back on error.

Views and services only ``flush``; the request is the unit of work, as a job is for the worker
middleware. Committing in ``dispatch_request`` (not in ``after_request``) means a conflict found
at commit time goes through the ordinary error handlers and answers 409, not 500.

A safe request (GET, HEAD, OPTIONS) may append to the audit log and touch a session's last-seen
time, nothing else: ``_guard_safe_writes`` watches every flush and every ORM bulk statement and
refuses any other write, so the rule holds by construction rather than by review.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from flask import Flask, has_request_context, request
from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.exc import (
    IntegrityError,
    InvalidRequestError,
    OperationalError,
    ResourceClosedError,
)
from sqlalchemy.orm import Session

from portal.audit import chaining
from portal.extensions import db

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The only tables a safe request may write: the audit trail (reading personal data is audited)
# and the session rows whose last-seen time a page view refreshes.
SAFE_WRITABLE = frozenset({"audit_entries", "audit_head", "user_sessions", "vendor_sessions"})


class WriteOnSafeRequest(RuntimeError):
    """A GET (or HEAD/OPTIONS) tried to change domain state: a bug in the view, never allowed."""


# PostgreSQL's "deadlock detected" and "could not serialize": the database chose this
# transaction to undo so that another could go on. Nothing of it was kept, so running the view
# again from the start is what the user would do by pressing the button again, only sooner.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
VIEW_TRIES = 3


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) and (
        getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    )


class PortalFlask(Flask):
    def dispatch_request(self):
        for tries_left in range(VIEW_TRIES - 1, -1, -1):
            try:
                rv = super().dispatch_request()
                finish()
                return rv
            except OperationalError as exc:
                if not tries_left or not retryable(exc):
                    raise
                discard()
                log.info(
                    "%s %s undone by the database (%s); running it again",
                    request.method,
                    request.url_rule,
                    exc.orig.sqlstate,
                )
                # A short random pause, so the transactions that met do not meet again.
                time.sleep(random.uniform(0.005, 0.05))
        raise AssertionError("unreachable")

    def handle_user_exception(self, e):
        # Whatever the view or the commit raised, its work goes before any error page renders.
        discard()
        return super().handle_user_exception(e)


def discard() -> None:
    """Roll back the request's unit of work, whatever state the error left it in.

    An error raised by an after-commit hook leaves the session mid-commit ("committed" state),
    where ``rollback()`` itself raises and would hide the first error behind a bare 500 page;
    the work is already committed then, so closing the session is all that is left to do.
    """
    sess = db.session()
    try:
        sess.rollback()
    except InvalidRequestError:
        sess.close()


@contextmanager
def attempt() -> Iterator[None]:
    """Run a step whose refusal the view turns into a form error: on ``DomainError`` whatever
    the step flushed is rolled back to a savepoint, and the rest of the request goes on (and
    is committed by the framework as usual)."""
    from portal.errors import Conflict, DomainError

    savepoint = db.session.begin_nested()

    def undo() -> None:
        # Also after a failed flush, which leaves the savepoint inactive but still open.
        with suppress(ResourceClosedError):  # the step rolled everything back itself
            savepoint.rollback()

    try:
        yield
    except DomainError:
        undo()
        raise
    except IntegrityError as exc:
        # A unique rule the step's own checks passed was taken a moment ago by someone else.
        undo()
        raise Conflict(
            _("Something with the same details was saved a moment ago. Check and try again.")
        ) from exc
    else:
        if savepoint.is_active:
            savepoint.commit()


_WROTE = "uow_wrote"  # session.info: something was flushed or executed since the last commit


def finish() -> None:
    """Commit the request's work (the view returned normally).

    A safe request that wrote nothing is left alone: committing would only expire the objects
    the rest of the request (a streamed body) still reads.
    """
    sess = db.session()
    if request.method in SAFE_METHODS and not (
        sess.info.get(_WROTE)
        or sess.new
        or sess.dirty
        or sess.deleted
        or chaining.has_pending(sess)
    ):
        return
    sess.commit()


@event.listens_for(Session, "after_flush")
def _note_flush(sess, flush_context) -> None:
    sess.info[_WROTE] = True


@event.listens_for(Session, "after_commit")
def _forget_writes(sess) -> None:
    if not sess.in_nested_transaction():
        sess.info.pop(_WROTE, None)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_writes(sess) -> None:
    if not sess.in_nested_transaction():
        sess.info.pop(_WROTE, None)


def _in_safe_request() -> bool:
    return has_request_context() and request.method in SAFE_METHODS


def _refuse(tables: set[str]) -> None:
    raise WriteOnSafeRequest(
        f"{request.method} {request.path} tried to write {', '.join(sorted(tables))}"
    )


@event.listens_for(Session, "before_flush")
def _guard_safe_flush(sess, flush_context, instances) -> None:
    if not _in_safe_request():
        return
    changed = [*sess.new, *sess.deleted, *(o for o in sess.dirty if sess.is_modified(o))]
    tables = {obj.__table__.name for obj in changed if hasattr(obj, "__table__")}
    if tables - SAFE_WRITABLE:
        _refuse(tables - SAFE_WRITABLE)


@event.listens_for(Session, "do_orm_execute")
def _guard_safe_statement(state) -> None:
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    state.session.info[_WROTE] = True
    if not _in_safe_request():
        return
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    if name not in SAFE_WRITABLE:
        _refuse({str(name)})


def init_app(app: Flask) -> None:
    @app.teardown_request
    def _rollback_on_error(exc) -> None:
        if exc is not None:
            db.session.rollback()

"""Work that must not share the request's (or job's) transaction, run once its connection is
back in the pool.

A separate short transaction opened while the session still holds its connection needs a
second connection: with every thread of a process doing that at once, the pool is empty and
they all wait for each other. SQLAlchemy ends a session's outermost transaction by returning
its connection to the pool and only then announcing ``after_transaction_end``: work queued
here runs at that point, on one connection at a time, whether the transaction committed or
rolled back (the touch of a session's last-seen time must count a failed request too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask_sqlalchemy.session import Session
from sqlalchemy import event, update

from portal.extensions import db

log = logging.getLogger(__name__)
_KEY = "portal_after_release"


def after_release(fn: Callable[[], None]) -> None:
    """Run ``fn`` when the current session's outermost transaction has ended."""
    db.session.info.setdefault(_KEY, []).append(fn)


@event.listens_for(Session, "after_transaction_end")
def _run_released(sess, transaction) -> None:
    if transaction.parent is not None:  # a savepoint or inner block: the connection is held
        return
    for fn in sess.info.pop(_KEY, None) or ():
        try:
            fn()
        except Exception:  # bookkeeping only: never fail what already ended
            log.warning("work after the transaction failed", exc_info=True)


def touch_after_release(model, row_id: int, now) -> None:
    """Set a session row's ``last_seen_at`` once the current transaction has ended."""
    engine = db.session.get_bind()

    def touch() -> None:
        with engine.begin() as conn:
            conn.execute(update(model).where(model.id == row_id).values(last_seen_at=now))

    after_release(touch)

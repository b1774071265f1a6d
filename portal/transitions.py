"""State changes that hold under concurrency: check and set in one statement.

Reading a row's status, deciding in Python and then writing it lets two requests (a double
click, two tabs, a retried delivery) both pass the check. Here the check is the ``WHERE`` of the
``UPDATE``: on PostgreSQL the second writer waits for the first one's row lock, then sees the
committed status, matches no row and is told so. ``insert_or_skip`` does the same for "create
unless it exists" through ``INSERT ... ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import inspect, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.errors import InvalidTransition
from portal.extensions import db

Refusal = str | Callable[[str | None], str]


def change(model, ident, from_states: Iterable[str], to_state: str, *, where=(), **values) -> bool:
    """UPDATE the row ``ident`` of ``model`` to ``to_state`` (and ``values``) if its status is
    one of ``from_states`` (and the extra ``where`` conditions hold). True if it did."""
    key = inspect(model).primary_key[0]
    result = db.session.execute(
        update(model)
        .where(key == ident, model.status.in_(tuple(from_states)), *where)
        .values(status=to_state, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def current_status(model, ident) -> str | None:
    """The status as committed now (or as this transaction wrote it), not as loaded earlier."""
    key = inspect(model).primary_key[0]
    return db.session.scalar(select(model.status).where(key == ident))


def move(
    instance, from_states: Iterable[str], to_state: str, refused: Refusal, *, where=(), **values
) -> None:
    """Move a loaded row from one of ``from_states`` to ``to_state`` or raise
    ``InvalidTransition``; ``refused`` is the message, or makes it from the status found.

    Changes pending on ``instance`` are flushed first, and the columns written are read back,
    so the object matches the row afterwards.
    """
    model = type(instance)
    ident = inspect(instance).identity[0]
    db.session.flush()
    if not change(model, ident, from_states, to_state, where=where, **values):
        found = current_status(model, ident)
        raise InvalidTransition(refused(found) if callable(refused) else refused)
    db.session.refresh(instance, attribute_names=["status", *values])


def dialect_insert(model):
    """The INSERT of the session's database dialect, which has ``on_conflict_do_nothing``."""
    dialect = db.session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(model)


def insert_or_skip(model, values: dict, returning=None):
    """INSERT one row unless it clashes with a unique constraint; returns ``returning`` of the
    new row (or True) when inserted, None when the row was there already.

    On PostgreSQL a clash with a row another transaction has not committed yet waits for that
    transaction: when it commits this one skips, when it rolls back this one inserts.
    """
    statement = dialect_insert(model).values(**values).on_conflict_do_nothing()
    if returning is None:
        # RETURNING, not the row count: psycopg reports -1 rows for ON CONFLICT DO NOTHING.
        key = inspect(model).primary_key[0]
        return db.session.execute(statement.returning(key)).first() is not None or None
    return db.session.execute(statement.returning(returning)).scalar_one_or_none()

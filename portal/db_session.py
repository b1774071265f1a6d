"""The portal's ORM session: ``commit()`` first runs the hooks that must come last in a transaction.

A hook registered here runs at the start of every root commit (``Session.commit()``, whatever
savepoints are open), never at a savepoint's release, which SQLAlchemy's ``before_commit`` event
does not tell apart. The audit chain uses it so that its one shared row is the last lock a
transaction takes (see ``portal.audit.chaining``).
"""

from __future__ import annotations

from collections.abc import Callable

from flask_sqlalchemy.session import Session as FlaskSession

_before_root_commit: list[Callable[[FlaskSession], None]] = []


def before_root_commit(hook: Callable[[FlaskSession], None]) -> Callable[[FlaskSession], None]:
    """Register ``hook(session)`` to run before each root commit (in registration order)."""
    if hook not in _before_root_commit:
        _before_root_commit.append(hook)
    return hook


class PortalSession(FlaskSession):
    def commit(self) -> None:
        for hook in _before_root_commit:
            hook(self)
        super().commit()

"""The portal's ORM session: ``commit()`` first runs the hooks that must come last in a transaction.

A hook registered here runs at the start of every root commit (``Session.commit()``, whatever
savepoints are open), never at a savepoint's release, which SQLAlchemy's ``before_commit`` event
does not tell apart. Hooks that lock shared rows at commit run in ``lock_order`` (lowest first),
which is the order in which every transaction takes those rows, so no two commits wait on each
other in a cycle: the signer's nonce row (``portal.chain.txmanager``, 10) comes before the audit
chain's head (``portal.audit.chaining``, 100), which is the last lock a transaction takes.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_sqlalchemy.session import Session as FlaskSession

Hook = Callable[[FlaskSession], None]
LAST = 100  # the audit chain's head: nothing is locked after it
_before_root_commit: list[tuple[int, Hook]] = []


def before_root_commit(hook: Hook | None = None, *, lock_order: int = LAST):
    """Register ``hook(session)`` to run before each root commit: hooks with a lower
    ``lock_order`` first, then in registration order. Usable as ``@before_root_commit`` or
    ``@before_root_commit(lock_order=N)``."""

    def register(fn: Hook) -> Hook:
        if all(registered is not fn for _, registered in _before_root_commit):
            _before_root_commit.append((lock_order, fn))
            _before_root_commit.sort(key=lambda item: item[0])  # stable: ties keep their order
        return fn

    return register if hook is None else register(hook)


class PortalSession(FlaskSession):
    def commit(self) -> None:
        for _, hook in list(_before_root_commit):
            hook(self)
        super().commit()

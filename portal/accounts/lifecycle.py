"""The end of a staff account, and what a user can see of their own trail.

Deactivating (the Active box on the user's page) is a pause: the account can be reactivated.
Closing is final: the account stays, so the audit trail keeps naming one person, but it can never
sign in again and cannot be reactivated. Its email stays taken: a new account with the same
address would read, in the log and in every listing, as the same person as the closed one.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import and_, or_, select

from portal import events
from portal.accounts import safeguards, sessions
from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.errors import Conflict
from portal.extensions import db
from portal.timeutil import utcnow


def close_account(user: User, *, actor: User | None) -> list[int]:
    """Close ``user``'s account (``actor`` None: an operator). Returns the sessions ended."""
    if user.closed_at is not None:
        raise Conflict(_("This account is already closed."))
    if actor is not None and actor.id == user.id:
        raise safeguards.Refused(_("You cannot close your own account."), "active")
    if actor is not None:
        safeguards.check_role_assignment(actor, user, user.role, False)
    else:
        safeguards.check_administration_after_user_change(user, user.role, False)
    from portal.twofactor import services as twofactor

    twofactor.remove(user)  # no secret outlives the account
    user.active = False
    user.closed_at = utcnow()
    ended = sessions.revoke_all(user.id)  # and their sockets, once this commits
    db.session.flush()
    events.user_changed.send(
        user,
        action="user.closed",
        summary=f"User {user.id} account closed; {len(ended)} sessions ended",
    )
    return ended


def own_activity_query(user_id: int):
    """The audit entries of what the user did, and of what was done to their account (failed
    sign-ins with their email, role changes, resets): newest first."""
    about_them = and_(AuditEntry.target_type == "users", AuditEntry.target_id == str(user_id))
    return (
        select(AuditEntry)
        .where(or_(AuditEntry.actor_id == user_id, about_them))
        .order_by(AuditEntry.seq.desc())
    )

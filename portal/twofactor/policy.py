"""Who must use two-factor sign-in, and how long they may go without it.

Required of every user whose role holds a permission listed in TWO_FACTOR_PERMISSIONS. A required
user who has not set it up gets TWO_FACTOR_GRACE_HOURS from their first sign-in without it; after
that every page sends them to set it up (and sockets refuse them) until they do.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from portal.accounts.models import User
from portal.timeutil import utcnow


def required_permissions() -> set[str]:
    raw = current_app.config.get("TWO_FACTOR_PERMISSIONS") or ""
    return {name.strip() for name in raw.split(",") if name.strip()}


def required(user: User) -> bool:
    return bool(required_permissions() & user.role.permissions)


def enrolled(user: User) -> bool:
    return user.two_factor_enabled_at is not None


def start_grace(user: User) -> None:
    """At sign-in: a required user without two-factor starts their grace period (once)."""
    if required(user) and not enrolled(user) and user.two_factor_grace_until is None:
        hours = current_app.config["TWO_FACTOR_GRACE_HOURS"]
        user.two_factor_grace_until = utcnow() + timedelta(hours=hours)


def overdue(user: User) -> bool:
    """Required, not set up, and out of grace: the user may use nothing but the set-up page.

    No grace yet (a session from before the policy, or a role that came to require it while
    signed in) is not overdue: the grace starts at the next sign-in, which the absolute session
    lifetime brings within SESSION_ABSOLUTE_SECONDS.
    """
    if not required(user) or enrolled(user):
        return False
    until = user.two_factor_grace_until
    return until is not None and utcnow() >= until


def grace_left(user: User) -> timedelta | None:
    """Time left to set it up, for the reminder banner; None when nothing is due."""
    if not required(user) or enrolled(user) or user.two_factor_grace_until is None:
        return None
    left = user.two_factor_grace_until - utcnow()
    return left if left > timedelta(0) else None

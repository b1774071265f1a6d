"""The step between a right password and a session: the half-signed-in state.

After the password, a user with two-factor gets only a note in the (signed) Flask session: who,
when, and a fingerprint of their password hash. That note is not a sign-in: Flask-Login knows no
user, no session row exists, and every page and socket treats the browser as signed out. Only
the code page reads it, for five minutes, and only ``complete`` turns it into a session.
"""

from __future__ import annotations

import time

from flask import redirect, session, url_for
from flask_login import login_user

from portal import events
from portal.accounts import sessions
from portal.accounts.models import User
from portal.crypto import token_hash
from portal.extensions import db
from portal.twofactor import devices, policy

PENDING = "two_factor_pending"
PENDING_SECONDS = 300


def _fingerprint(user: User) -> str:
    # A password changed (or reset) meanwhile voids the note.
    return token_hash(user.password_hash)[:16]


def after_password(user: User, next_url: str):
    """The answer to a right password: the code page, or the session at once."""
    if policy.enrolled(user) and not devices.remembered(user):
        session.pop("_user_id", None)
        session[PENDING] = {
            "uid": user.id,
            "at": int(time.time()),
            "fp": _fingerprint(user),
            "next": next_url,
        }
        return redirect(url_for("twofactor.challenge"))
    return complete(user, next_url, method="remembered" if policy.enrolled(user) else "none")


def pending() -> tuple[User, str] | None:
    """The user (and where to go next) of a live half-signed-in note, else None."""
    note = session.get(PENDING)
    if not isinstance(note, dict):
        return None
    uid, at = note.get("uid"), note.get("at")
    if not isinstance(uid, int) or not isinstance(at, int) or time.time() - at > PENDING_SECONDS:
        session.pop(PENDING, None)
        return None
    user = db.session.get(User, uid)
    if user is None or not user.active or user.closed_at is not None:
        session.pop(PENDING, None)
        return None
    if note.get("fp") != _fingerprint(user) or not policy.enrolled(user):
        session.pop(PENDING, None)
        return None
    return user, str(note.get("next") or url_for("main.home"))


def complete(user: User, next_url: str, *, method: str, remember: bool = False):
    """Start the session. ``method``: how the second factor was given (for the audit log)."""
    sessions.start(user)  # a fresh Flask session: the note goes with the old one
    login_user(user)
    policy.start_grace(user)
    devices.note_sign_in(user, remember=remember)
    events.user_signed_in.send(
        user,
        action="auth.signed_in",
        summary=f"User {user.id} signed in",
        data={"second_factor": method},
    )
    return redirect(next_url)

"""Server-side session rows behind Flask-Login: listed, revocable, checked on every request."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app, request, session
from sqlalchemy import select, update

from portal import realtime
from portal.accounts.models import User, UserSession
from portal.crypto import token_hash
from portal.extensions import db
from portal.timeutil import utcnow

# Touching last_seen_at on every request would write on every page view.
_TOUCH_EVERY = timedelta(minutes=1)


def start(user: User) -> UserSession:
    token = secrets.token_urlsafe(32)
    row = UserSession(
        user_id=user.id,
        token_hash=token_hash(token),
        user_agent=(request.user_agent.string or "")[:255],
    )
    db.session.add(row)
    db.session.flush()
    session.clear()  # a fresh session: no fixation across sign-in
    session["sid"] = token
    session["sid_row"] = row.id
    session.permanent = True
    return row


def current_session_user(user_id: str, token: str | None) -> User | None:
    if not token or not user_id.isdigit():
        return None
    row = db.session.scalar(
        select(UserSession).where(
            UserSession.token_hash == token_hash(token), UserSession.revoked_at.is_(None)
        )
    )
    if row is None or row.user_id != int(user_id):
        return None
    lifetime = timedelta(seconds=current_app.config["PERMANENT_SESSION_LIFETIME"])
    now = utcnow()
    if now - row.last_seen_at > lifetime:
        return None
    if now - row.last_seen_at > _TOUCH_EVERY:
        # A separate statement so a request that rolls back still counts as activity.
        with db.engine.begin() as conn:
            conn.execute(
                update(UserSession).where(UserSession.id == row.id).values(last_seen_at=now)
            )
    user = db.session.get(User, row.user_id)
    return user if user and user.active else None


def end_current() -> int | None:
    row_id = session.get("sid_row")
    if row_id:
        revoke(row_id)
    session.clear()
    return row_id


def revoke(row_id: int, user_id: int | None = None) -> bool:
    """Revoke one session; its sockets close on every web process once this commits."""
    query = update(UserSession).where(UserSession.id == row_id, UserSession.revoked_at.is_(None))
    if user_id is not None:
        query = query.where(UserSession.user_id == user_id)
    revoked = db.session.execute(query.values(revoked_at=utcnow())).rowcount == 1
    if revoked:
        realtime.evict_after_commit(realtime.session_room(row_id), ended=True)
    return revoked


def revoke_all(user_id: int) -> int:
    """Revoke every session of the user; their sockets close everywhere once this commits."""
    count = db.session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
    if count:
        realtime.evict_after_commit(realtime.user_room(user_id), ended=True)
    return count


def active_for(user_id: int) -> list[UserSession]:
    return list(
        db.session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
            .order_by(UserSession.last_seen_at.desc())
        )
    )

"""Server-side session rows behind Flask-Login: listed, revocable, checked on every request.

A session ends when revoked, after PERMANENT_SESSION_LIFETIME without a request (idle), and
SESSION_ABSOLUTE_SECONDS after sign-in however active it is (a stolen cookie does not live on).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app, request, session
from sqlalchemy import select, update

from portal import realtime
from portal.accounts.models import User, UserSession
from portal.after_release import touch_after_release
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
    cfg = current_app.config
    idle = timedelta(seconds=cfg["PERMANENT_SESSION_LIFETIME"])
    absolute = timedelta(seconds=cfg["SESSION_ABSOLUTE_SECONDS"])
    now = utcnow()
    if now - row.last_seen_at > idle or now - row.created_at > absolute:
        return None
    if now - row.last_seen_at > _TOUCH_EVERY:
        # Outside the request's transaction, so a request that rolls back still counts as
        # activity; after it, so the request never holds two connections.
        touch_after_release(UserSession, row.id, now)
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


def revoke_all(user_id: int, keep: int | None = None) -> list[int]:
    """Revoke the user's live sessions (but ``keep``); their sockets close on every web process
    once this commits. Returns the ids of the sessions ended."""
    query = (
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(UserSession.id)
    )
    if keep is not None:
        query = query.where(UserSession.id != keep)
    ended = sorted(db.session.scalars(query))
    for row_id in ended:
        realtime.evict_after_commit(realtime.session_room(row_id), ended=True)
    return ended


def active_for(user_id: int) -> list[UserSession]:
    cfg = current_app.config
    now = utcnow()
    idle_since = now - timedelta(seconds=cfg["PERMANENT_SESSION_LIFETIME"])
    started_since = now - timedelta(seconds=cfg["SESSION_ABSOLUTE_SECONDS"])
    return list(
        db.session.scalars(
            select(UserSession)
            .where(
                UserSession.user_id == user_id,
                UserSession.revoked_at.is_(None),
                UserSession.last_seen_at >= idle_since,
                UserSession.created_at >= started_since,
            )
            .order_by(UserSession.last_seen_at.desc())
        )
    )

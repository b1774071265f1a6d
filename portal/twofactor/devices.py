"""The browsers a user signs in from: a new one is notified, a remembered one skips the code.

Each browser carries a device cookie: a random token, signed with the app's secret key. The
server keeps only the token's hash, per user. A forged cookie fails the signature; a copied one
is remembered only for the user who asked on that browser, until it expires or is forgotten.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import after_this_request, current_app, request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update

from portal.accounts import notify
from portal.accounts.models import User
from portal.crypto import token_hash
from portal.extensions import db
from portal.timeutil import utcnow
from portal.twofactor.models import KnownDevice

COOKIE = "portal_device"
# The device cookie outlives any remembering: it is how a browser is recognised as known.
COOKIE_DAYS = 400


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="portal known device")


def cookie_token() -> str | None:
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 200:
        return None
    try:
        token = _serializer().loads(raw)
    except BadSignature:
        return None
    return token if isinstance(token, str) and len(token) >= 32 else None


def _token_for_response() -> str:
    """This browser's token, issuing one (set on the response) if it has none."""
    token = cookie_token()
    if token is None:
        token = secrets.token_urlsafe(32)
        signed = _serializer().dumps(token)

        @after_this_request
        def set_cookie(response):
            response.set_cookie(
                COOKIE,
                signed,
                max_age=COOKIE_DAYS * 86400,
                httponly=True,
                secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
                samesite="Lax",
            )
            return response

    return token


def _row(user_id: int, token: str) -> KnownDevice | None:
    return db.session.scalar(
        select(KnownDevice).where(
            KnownDevice.user_id == user_id, KnownDevice.token_hash == token_hash(token)
        )
    )


def remembered(user: User) -> bool:
    """This browser was remembered by this user and still is."""
    token = cookie_token()
    if token is None:
        return False
    row = _row(user.id, token)
    return bool(row and row.remembered_until and row.remembered_until > utcnow())


def note_sign_in(user: User, *, remember: bool = False) -> KnownDevice:
    """Record the sign-in's browser; tell the user by email when it is new to their account
    (not for their very first browser: nothing was known before it)."""
    token = _token_for_response()
    now = utcnow()
    row = _row(user.id, token)
    user_agent = (request.user_agent.string or "")[:255]
    if row is None:
        known_before = db.session.scalar(
            select(KnownDevice.id).where(KnownDevice.user_id == user.id).limit(1)
        )
        row = KnownDevice(user_id=user.id, token_hash=token_hash(token), user_agent=user_agent)
        db.session.add(row)
        if known_before is not None:
            notify.send_email(user, "new_device", user_agent=user_agent, at=now)
    row.last_seen_at = now
    row.user_agent = user_agent
    if remember:
        days = current_app.config["TWO_FACTOR_REMEMBER_DAYS"]
        row.remembered_until = now + timedelta(days=days)
    db.session.flush()
    return row


def remembered_for(user_id: int) -> list[KnownDevice]:
    return list(
        db.session.scalars(
            select(KnownDevice)
            .where(KnownDevice.user_id == user_id, KnownDevice.remembered_until > utcnow())
            .order_by(KnownDevice.last_seen_at.desc())
        )
    )


def forget(row_id: int, user_id: int) -> bool:
    """Stop remembering one browser of the user; its next sign-in asks for a code."""
    query = (
        update(KnownDevice)
        .where(
            KnownDevice.id == row_id,
            KnownDevice.user_id == user_id,
            KnownDevice.remembered_until.is_not(None),
        )
        .values(remembered_until=None)
    )
    return db.session.execute(query).rowcount == 1


def forget_all(user_id: int) -> int:
    query = (
        update(KnownDevice)
        .where(KnownDevice.user_id == user_id, KnownDevice.remembered_until.is_not(None))
        .values(remembered_until=None)
    )
    return db.session.execute(query).rowcount

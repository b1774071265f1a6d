"""Vendor sessions: a server-side row behind its own key in the signed session cookie.

Staff sessions use ``sid``; vendors ``vsid``. The two never stand in for each other: a vendor
session opens no staff page and a staff sign-in opens no vendor page.

A vendor has at most VENDOR_MAX_SESSIONS live sessions (a new sign-in ends the oldest), and
suspending a vendor ends them all: the rows are revoked, so reinstating the vendor brings none
back. Sockets of ended sessions are closed once the change commits.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app, has_request_context, request, session
from sqlalchemy import select, update

from portal import realtime
from portal.after_release import touch_after_release
from portal.crypto import token_hash
from portal.extensions import db
from portal.timeutil import utcnow
from portal.vendor_portal.models import VendorSession
from portal.vendors.models import APPROVED, Vendor

TOKEN_KEY, ROW_KEY = "vsid", "vsid_row"
# Cached on the request's environ, which lives exactly as long as the request (``g`` outlives
# it where an app context is shared, as in tests).
_CACHE = "portal.vendor"
_MISSING = object()
_TOUCH_EVERY = timedelta(minutes=1)


def start(vendor: Vendor) -> VendorSession:
    """A new session for this browser; beyond the cap, the vendor's oldest live ones end."""
    # The vendor row lock makes two sign-ins at once count each other (PostgreSQL).
    db.session.scalar(select(Vendor.id).where(Vendor.id == vendor.id).with_for_update())
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = VendorSession(
        vendor_id=vendor.id,
        token_hash=token_hash(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=current_app.config["VENDOR_SESSION_SECONDS"]),
        user_agent=(request.user_agent.string or "")[:255] if has_request_context() else "",
    )
    db.session.add(row)
    db.session.flush()
    _trim(vendor.id, keep=max(current_app.config["VENDOR_MAX_SESSIONS"], 1))
    session[TOKEN_KEY] = token
    session[ROW_KEY] = row.id
    session.permanent = True
    forget_cached()
    return row


def current_vendor() -> Vendor | None:
    """The approved vendor of this browser's live vendor session, else None (cached per request)."""
    if not has_request_context():
        return None
    found = request.environ.get(_CACHE, _MISSING)
    if found is _MISSING:
        found = request.environ[_CACHE] = _load()
    return found


def forget_cached() -> None:
    """Socket events share one environ per connection: each must see a revoke made a moment
    ago, as requests do."""
    if has_request_context():
        request.environ.pop(_CACHE, None)


def current_row_id() -> int | None:
    return session.get(ROW_KEY)


def _load() -> Vendor | None:
    token = session.get(TOKEN_KEY)
    if not token:
        return None
    row = db.session.scalar(
        select(VendorSession).where(
            VendorSession.token_hash == token_hash(token), VendorSession.revoked_at.is_(None)
        )
    )
    now = utcnow()
    if row is None or row.expires_at <= now:
        return None
    if now - row.last_seen_at > _TOUCH_EVERY:
        # Outside the request's transaction, so a request that rolls back still counts as
        # activity; after it, so the request never holds two connections.
        touch_after_release(VendorSession, row.id, now)
    vendor = db.session.get(Vendor, row.vendor_id)
    return vendor if vendor is not None and vendor.status == APPROVED else None


def end_current() -> int | None:
    row_id = session.pop(ROW_KEY, None)
    session.pop(TOKEN_KEY, None)
    forget_cached()
    if row_id:
        revoke(row_id)
    return row_id


def live_ids(vendor_id: int) -> list[int]:
    """The vendor's sessions that still open pages, newest first."""
    return list(
        db.session.scalars(
            select(VendorSession.id)
            .where(
                VendorSession.vendor_id == vendor_id,
                VendorSession.revoked_at.is_(None),
                VendorSession.expires_at > utcnow(),
            )
            .order_by(VendorSession.created_at.desc(), VendorSession.id.desc())
        )
    )


def _trim(vendor_id: int, keep: int) -> list[int]:
    ended = [row_id for row_id in live_ids(vendor_id)[keep:] if revoke(row_id)]
    return ended


def revoke(row_id: int) -> bool:
    """Revoke one session; its sockets close on every web process once this commits."""
    revoked = (
        db.session.execute(
            update(VendorSession)
            .where(VendorSession.id == row_id, VendorSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        ).rowcount
        == 1
    )
    if revoked:
        realtime.evict_after_commit(realtime.vendor_session_room(row_id), ended=True)
    return revoked


def revoke_all(vendor_id: int) -> int:
    """Revoke every session of the vendor; their sockets close everywhere once this commits."""
    count = db.session.execute(
        update(VendorSession)
        .where(VendorSession.vendor_id == vendor_id, VendorSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ).rowcount
    if count:
        realtime.evict_after_commit(realtime.vendor_room(vendor_id), ended=True)
    return count

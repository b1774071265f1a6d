"""Vendor sign-in attempts (an SMS code) and vendor sessions, apart from staff sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.redemptions.codes import AWAITING
from portal.timeutil import utcnow

USED = "used"


class VendorSignIn(db.Model):
    """One sign-in attempt. For a number that is no approved vendor's, the row exists too (so
    the pages answer alike) but holds no code and no vendor: nothing can match it."""

    __tablename__ = "vendor_sign_ins"

    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int | None] = mapped_column(
        ForeignKey("vendors.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=AWAITING)
    # HMAC of (vendor id, attempt id, code); see portal/redemptions/codes.py.
    code_hash: Mapped[str | None] = mapped_column(String(64))
    # The key of the per-number limit on sign-in codes, a keyed hash (portal/quotas).
    subject: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime]
    tries: Mapped[int] = mapped_column(default=0)
    resends: Mapped[int] = mapped_column(default=0)
    last_sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    used_at: Mapped[datetime | None]


class VendorSession(db.Model):
    """A signed-in vendor phone. Revoking the row ends it at its next request or socket event."""

    __tablename__ = "vendor_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    revoked_at: Mapped[datetime | None]

"""One row per counted action (a code sent, a wrong code, a charge) under a bucket and key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utcnow


class QuotaHit(db.Model):
    """``key`` names the thing attacked: ``vendor:<id>`` or a keyed hash of a phone number, never
    the number itself. Rows older than the longest window are deleted as they stop counting."""

    __tablename__ = "quota_hits"
    __table_args__ = (Index("ix_quota_hits_bucket_key_at", "bucket", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bucket: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

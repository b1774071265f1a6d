"""The outbox: every message the portal sends (SMS and email), encrypted at rest, with its
delivery state.

The number or address and the text are personal data (and the text may hold a one-time code or
a link), so they are encrypted columns. A message that carries a code or a link is purged (text
and number blanked) once it has expired: the row stays as the delivery record.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.crypto import Encrypted
from portal.extensions import db
from portal.timeutil import utcnow

QUEUED, SENT, FAILED = "queued", "sent", "failed"
STATUSES = (QUEUED, SENT, FAILED)
SMS, EMAIL = "sms", "email"


class OutboxMessage(db.Model):
    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), default=SMS)
    # What the message is for ("vendor.sign_in", "redemption.code"): never the text itself.
    purpose: Mapped[str] = mapped_column(String(40), index=True)
    recipient: Mapped[str | None] = mapped_column(Encrypted)
    body: Mapped[str | None] = mapped_column(Encrypted)
    # Email only: the subject and the HTML part (``body`` is the plain-text part).
    subject: Mapped[str | None] = mapped_column(Encrypted)
    html_body: Mapped[str | None] = mapped_column(Encrypted)
    status: Mapped[str] = mapped_column(String(10), default=QUEUED, index=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(80))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None]
    # When the text and the number are blanked (messages with a code: when the code expires).
    purge_after: Mapped[datetime | None] = mapped_column(index=True)
    purged_at: Mapped[datetime | None]
    # The effect the message is for ("receipt:42"), when there must be at most one per effect.
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)

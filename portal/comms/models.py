"""The outbox: every message the portal sends (SMS, email, WhatsApp), encrypted at rest, with
its delivery state (the delivery log).

The number or address and the text are personal data (and the text may hold a one-time code or
a link), so they are encrypted columns. A message that carries a code or a link is purged (text
and number blanked) once it has expired: the row stays as the delivery record.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.crypto import Encrypted
from portal.extensions import db
from portal.timeutil import utcnow

QUEUED, SENT, FAILED = "queued", "sent", "failed"
# Delivery receipts move a sent message on; "review": an interrupted send whose outcome is not
# known and that the provider cannot be asked about (never re-sent by itself); "held": waiting
# for its paused campaign; "cancelled" with its campaign; "opted_out": STOP came before it went.
DELIVERED, REVIEW, HELD, CANCELLED, OPTED_OUT = (
    "delivered",
    "review",
    "held",
    "cancelled",
    "opted_out",
)
STATUSES = (QUEUED, SENT, DELIVERED, FAILED, REVIEW, HELD, CANCELLED, OPTED_OUT)
# Where a message can still go on; receipts may still move the others (sent → delivered).
UNSENT = (QUEUED, HELD)
FINAL = (DELIVERED, FAILED, CANCELLED, OPTED_OUT)
SMS, EMAIL, WHATSAPP = "sms", "email", "whatsapp"
CHANNELS = (SMS, EMAIL, WHATSAPP)


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
    # The delivery log: the key the provider de-duplicates on (and that its receipts carry
    # back), the provider's last word on the message and when it came.
    key: Mapped[str | None] = mapped_column(String(36), unique=True)
    error_code: Mapped[str | None] = mapped_column(String(20))
    delivered_at: Mapped[datetime | None]
    status_at: Mapped[datetime | None]
    # The job claim that last recorded an outcome: a later claim with no outcome between them
    # means a send was interrupted (see ``portal.comms.services.deliver``).
    recorded_claim: Mapped[int] = mapped_column(default=0)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    beneficiary_id: Mapped[int | None] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="SET NULL")
    )
    language: Mapped[str | None] = mapped_column(String(8))
    # WhatsApp: the approved template the message is sent as (the body is its parameters).
    template: Mapped[str | None] = mapped_column(String(80))
    # When the text and the number are blanked (messages with a code: when the code expires).
    purge_after: Mapped[datetime | None] = mapped_column(index=True)
    purged_at: Mapped[datetime | None]
    # The effect the message is for ("receipt:42"), when there must be at most one per effect.
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)

    __table_args__ = (
        # One message per person per campaign, whatever retries or a second start do.
        Index("uq_outbox_campaign_beneficiary", "campaign_id", "beneficiary_id", unique=True),
        # A campaign's counts by status, and "is anything left to send?" after each message.
        Index("ix_outbox_campaign_status", "campaign_id", "status"),
    )

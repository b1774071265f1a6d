"""Messages received from beneficiaries (SMS and WhatsApp) and the campaign opt-outs.

An inbound row is the record that a provider's message was heard: its provider id is unique,
so a webhook the provider delivers twice is handled once. The text is not kept here; a message
that becomes a grievance is stored there, encrypted. The sender is kept only as the phone's
blind index.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utcnow

# What an inbound message turned out to be.
BALANCE, GRIEVANCE, STOP, START, UNKNOWN = "balance", "grievance", "stop", "start", "unknown"
KINDS = (BALANCE, GRIEVANCE, STOP, START, UNKNOWN)


class InboundMessage(db.Model):
    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_message_id", name="uq_inbound_provider_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))  # "sms" or "whatsapp"
    provider_message_id: Mapped[str] = mapped_column(String(80))
    phone_index: Mapped[str] = mapped_column(String(64), index=True)
    beneficiary_id: Mapped[int | None] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10), default=UNKNOWN)
    # Why no reply went out ("" when one did): "over the number's daily cap", ...
    reply_withheld: Mapped[str] = mapped_column(String(60), default="")
    reply_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="SET NULL")
    )
    grievance_id: Mapped[int | None] = mapped_column(
        ForeignKey("grievances.id", ondelete="SET NULL")
    )
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

"""Beneficiary cards: a QR of an opaque token, not personal data; revocable and reissuable."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utcnow

ACTIVE, REVOKED = "active", "revoked"


class BeneficiaryCard(db.Model):
    __tablename__ = "beneficiary_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    beneficiary_id: Mapped[int] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="CASCADE"), index=True
    )
    # The token is printed on the card and never stored: a copy of the database prints no card.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The last characters, so staff can tell two cards apart on the phone.
    token_hint: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(10), default=ACTIVE, index=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]

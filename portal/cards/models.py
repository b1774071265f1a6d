"""Beneficiary cards: a QR of an opaque token, not personal data; revocable and reissuable."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import utcnow

ACTIVE, REVOKED = "active", "revoked"


class BeneficiaryCard(db.Model):
    __tablename__ = "beneficiary_cards"
    __table_args__ = (
        # At most one working card per person, even when two issues race.
        Index(
            "uq_beneficiary_cards_one_active",
            "beneficiary_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

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
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The print run whose PDF carries this card's token (None: issued without a sheet).
    print_id: Mapped[int | None] = mapped_column(
        ForeignKey("card_prints.id", ondelete="SET NULL"), index=True
    )


class CardPrint(db.Model):
    """One PDF of cards: a whole group (made by a job) or one person (made at once).

    The PDF holds the only copy of the tokens it shows, so it is kept encrypted and briefly.
    """

    __tablename__ = "card_prints"

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("beneficiary_groups.id", ondelete="SET NULL"), index=True
    )
    beneficiary_id: Mapped[int | None] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="SET NULL"), index=True
    )
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    file_id: Mapped[str | None] = mapped_column(ForeignKey("stored_files.id", ondelete="SET NULL"))
    # Whether names are printed: decided by the requester's permission when asked.
    with_names: Mapped[bool] = mapped_column(default=False)
    cards_count: Mapped[int] = mapped_column(default=0)
    pages: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    job = relationship("Job")
    file = relationship("StoredFile")

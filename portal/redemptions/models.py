"""A redemption: a vendor charges a beneficiary's entitlement, confirmed by the person's code.

awaiting_code → accepted (code right; entitlement reserved in the same UPDATE transaction)
→ submitted (handed to the chain) → settled (confirmed on chain). Side exits: failed (the
transfer did not happen; the reservation is given back), cancelled (by the vendor, or their
suspension), expired and locked (the code ran out of time or of tries). A code past its
expiry reads as expired (``effective_status``) before the sweeper writes it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.redemptions.codes import AWAITING, EXPIRED, LOCKED
from portal.timeutil import utcnow

ACCEPTED, SUBMITTED, SETTLED = "accepted", "submitted", "settled"
FAILED, CANCELLED = "failed", "cancelled"
STATUSES = (AWAITING, ACCEPTED, SUBMITTED, SETTLED, FAILED, CANCELLED, EXPIRED, LOCKED)
# The entitlement is reserved and the tokens are not yet with the vendor.
IN_FLIGHT = (ACCEPTED, SUBMITTED)
OPEN = (AWAITING, *IN_FLIGHT)
FINAL = (SETTLED, FAILED, CANCELLED, EXPIRED, LOCKED)
# How the vendor found the beneficiary.
BY_CARD, BY_PHONE = "card", "phone"


def effective_status(redemption: Redemption) -> str:
    """The status as of now: a code past its expiry is expired, written or not."""
    if redemption.status == AWAITING and redemption.code_expires_at <= utcnow():
        return EXPIRED
    return redemption.status


class Redemption(db.Model):
    __tablename__ = "redemptions"
    __table_args__ = (
        Index("ix_redemptions_vendor_created", "vendor_id", "created_at"),
        Index("ix_redemptions_project_status", "project_id", "status"),
        # The staff list (portal/ledger/redemption_list.py): newest first per project, or per
        # project and status, or per person, each a seek on one index however many rows there
        # are (a vendor's list uses ix_redemptions_vendor_created).
        Index("ix_redemptions_project_created", "project_id", "created_at", "id"),
        Index("ix_redemptions_beneficiary_created", "beneficiary_id", "created_at", "id"),
        Index("ix_redemptions_project_status_created", "project_id", "status", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"))
    # None for a decoy: a typed number that is nobody's who can pay in this project. The row
    # behaves like any other on the vendor's pages, but holds no code and sends no SMS.
    beneficiary_id: Mapped[int | None] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    # The key of the per-payer limits: a keyed hash of the phone number (portal/quotas).
    subject: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)  # token base units
    method: Mapped[str] = mapped_column(String(10), default=BY_CARD)
    status: Mapped[str] = mapped_column(String(16), default=AWAITING, index=True)
    # HMAC of (id, amount, code); emptied once the code is used or can no longer be.
    code_hash: Mapped[str | None] = mapped_column(String(64))
    code_expires_at: Mapped[datetime]
    tries: Mapped[int] = mapped_column(default=0)
    resends: Mapped[int] = mapped_column(default=0)
    last_sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    chain_tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]  # the code was accepted
    # What the beneficiary had left once this payment was reserved: shown on the receipt only.
    remaining_after: Mapped[int | None] = mapped_column(BigInteger)
    submitted_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]  # the transfer was confirmed on chain
    finished_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

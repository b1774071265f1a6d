"""Disbursements, their batches and items, and each beneficiary's running entitlement.

An item belongs to exactly one batch; a batch is one chain transaction with its own 32-byte id,
which the contract refuses to process twice. That id is what makes a retry after a crash safe.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import utcnow

# Disbursement.status
DRAFT, RUNNING, COMPLETED, FAILED = "draft", "running", "completed", "failed"
# A draft nobody will start: it promises nothing and keeps its rows for the record.
CANCELLED = "cancelled"
# DisbursementBatch.status
B_PENDING, B_SENT, B_CONFIRMED, B_FAILED = "pending", "sent", "confirmed", "failed"


class Disbursement(db.Model):
    __tablename__ = "disbursements"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(120))
    amount_each: Mapped[int] = mapped_column(BigInteger)  # base units
    beneficiaries: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    batch_size: Mapped[int] = mapped_column(Integer)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("beneficiary_groups.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(10), default=DRAFT, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    batches: Mapped[list[DisbursementBatch]] = relationship(
        back_populates="disbursement", order_by="DisbursementBatch.number"
    )


class DisbursementBatch(db.Model):
    __tablename__ = "disbursement_batches"
    __table_args__ = (UniqueConstraint("disbursement_id", "number", name="uq_batch_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    disbursement_id: Mapped[int] = mapped_column(ForeignKey("disbursements.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    batch_key: Mapped[str] = mapped_column(String(66), unique=True)  # bytes32, 0x-hex
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default=B_PENDING, index=True)
    tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    disbursement: Mapped[Disbursement] = relationship(back_populates="batches")


class DisbursementItem(db.Model):
    __tablename__ = "disbursement_items"
    __table_args__ = (
        UniqueConstraint("disbursement_id", "beneficiary_id", name="uq_disbursement_item"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    disbursement_id: Mapped[int] = mapped_column(ForeignKey("disbursements.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("disbursement_batches.id", ondelete="CASCADE"), index=True
    )
    beneficiary_id: Mapped[int] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(String(42))
    amount: Mapped[int] = mapped_column(BigInteger)


class Entitlement(db.Model):
    """What a beneficiary may still spend in a project, mirrored from confirmed chain events.

    ``allocated`` grows when an allocation batch is confirmed; ``redeemed`` grows in the same
    conditional UPDATE that accepts a redemption code, so the database refuses overspending
    before any transaction is sent.
    """

    __tablename__ = "entitlements"
    __table_args__ = (
        UniqueConstraint("project_id", "beneficiary_id", name="uq_entitlement_project_person"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    beneficiary_id: Mapped[int] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="CASCADE"), index=True
    )
    address: Mapped[str] = mapped_column(String(42), index=True)
    allocated: Mapped[int] = mapped_column(BigInteger, default=0)
    redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    revoked: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def remaining(self) -> int:
        return self.allocated - self.redeemed - self.revoked

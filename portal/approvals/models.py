"""Approval requests, each person's decision on one, and each project's second-approver
threshold.

Two rules live in the schema, so that no interleaving of requests can break them: a person
decides on a request at most once (``uq_approval_decision``), and nobody decides on their own
request (the decision row carries the requester, and a CHECK compares the two).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import utcnow

PENDING, APPROVED, REJECTED, CANCELLED, EXECUTED = (
    "pending",
    "approved",
    "rejected",
    "cancelled",
    "executed",
)
STATUSES = (PENDING, APPROVED, REJECTED, CANCELLED, EXECUTED)
APPROVE, REJECT = "approve", "reject"


class ApprovalRequest(db.Model):
    __tablename__ = "approval_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), index=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    # What the action is about (a disbursement's id; for funding, the project's own id).
    subject_id: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)  # base units of the project's token
    note: Mapped[str] = mapped_column(String(500), default="")
    requested_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(10), default=PENDING, index=True)
    # Fixed when asked, from the project's threshold then: 1, or 2 above it.
    approvals_needed: Mapped[int] = mapped_column(Integer, default=1)
    approvals: Mapped[int] = mapped_column(Integer, default=0)
    # Set while pending for kinds that allow one open request per subject (a disbursement is
    # started once): unique, so a second open request for it cannot be written. NULL otherwise.
    open_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    # What the action made (a funding's id), once it ran.
    result_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    executed_at: Mapped[datetime | None]

    requested_by = relationship("User", foreign_keys=[requested_by_id])
    decisions: Mapped[list[ApprovalDecision]] = relationship(
        back_populates="request", order_by="ApprovalDecision.id"
    )


class ApprovalDecision(db.Model):
    __tablename__ = "approval_decisions"
    __table_args__ = (
        UniqueConstraint("request_id", "user_id", name="uq_approval_decision"),
        CheckConstraint("user_id <> requested_by_id", name="not_own_request"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("approval_requests.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    request: Mapped[ApprovalRequest] = relationship(back_populates="decisions")
    user = relationship("User", foreign_keys=[user_id])


class ApprovalThreshold(db.Model):
    """Above ``second_above`` base units, a request needs a second approver (NULL: never)."""

    __tablename__ = "approval_thresholds"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    second_above: Mapped[int | None] = mapped_column(BigInteger)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

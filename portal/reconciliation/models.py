"""Uploaded provider statements and their lines, each line's match to a payout."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utcnow

# What matching found for a line.
MATCHED = "matched"  # reference and amount agree with a payout
UNEXPECTED = "unexpected"  # no payout has the reference
DUPLICATE = "duplicate"  # the payout is already matched by another line
AMOUNT_DIFFERS = "amount_differs"  # the payout's amount is not the line's
NOT_PAID = "not_paid"  # the statement itself says the transfer failed
STATES = (MATCHED, UNEXPECTED, DUPLICATE, AMOUNT_DIFFERS, NOT_PAID)
EXCEPTIONS = (UNEXPECTED, DUPLICATE, AMOUNT_DIFFERS)


class Statement(db.Model):
    __tablename__ = "statements"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatementLine(db.Model):
    __tablename__ = "statement_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(
        ForeignKey("statements.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    row_number: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(64), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    value_date: Mapped[date | None]
    state: Mapped[str] = mapped_column(String(20), index=True)
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id"), index=True)
    # An exception someone resolved: by matching it by hand or setting it aside, with why.
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str] = mapped_column(String(255), default="")

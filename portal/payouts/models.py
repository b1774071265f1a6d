"""Payout methods of vendors, payouts, and the bank-file batches that carry bank payouts.

A payout copies the payee's details from the method when it is made: editing or removing a
method later never changes where money already on its way goes.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.crypto import Encrypted
from portal.extensions import db
from portal.timeutil import utcnow

BANK, MOMO = "bank", "momo"
KINDS = {BANK: "Bank account", MOMO: "Mobile money"}
# The same, in the page's language (``KINDS`` stays English for audit summaries).
KIND_LABELS = {BANK: _l("Bank account"), MOMO: _l("Mobile money")}

PENDING, SENT, PAID, FAILED = "pending", "sent", "paid", "failed"
STATUSES = (PENDING, SENT, PAID, FAILED)
STATUS_LABELS = {
    PENDING: _l("Pending"),
    SENT: _l("Sent"),
    PAID: _l("Paid"),
    FAILED: _l("Failed"),
}

# How a payout counts as paid for the books: a statement line matched it, or a permitted user
# said so with a reason (``payout.override``).
BOOKS_MATCHED, BOOKS_OVERRIDE = "matched", "override"
BOOKS_LABELS = {BOOKS_MATCHED: _l("matched"), BOOKS_OVERRIDE: _l("override")}

BATCH_OPEN, BATCH_SENT = "open", "sent"
BATCH_LABELS = {BATCH_OPEN: _l("Open"), BATCH_SENT: _l("Sent")}


class PayoutMethod(db.Model):
    __tablename__ = "payout_methods"
    __table_args__ = (
        # One default per vendor, kept by the database (two tabs setting it at once).
        Index(
            "uq_payout_method_default",
            "vendor_id",
            unique=True,
            postgresql_where=db.text("is_default AND active"),
            sqlite_where=db.text("is_default AND active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    # Bank: the account holder's name, number and the bank's code. Mobile money: the number
    # (E.164) in ``account_number`` and the holder's name. Personal data: encrypted.
    account_name: Mapped[str] = mapped_column(Encrypted)
    account_number: Mapped[str] = mapped_column(Encrypted)
    bank_code: Mapped[str] = mapped_column(String(20), default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    added_by_vendor: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PayoutBatch(db.Model):
    """Bank payouts of one project put in one bulk-payment file."""

    __tablename__ = "payout_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=BATCH_OPEN)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    sent_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Payout(db.Model):
    __tablename__ = "payouts"
    __table_args__ = (
        # What asked for the payout (a settlement, later): asking twice makes one payout.
        UniqueConstraint("source_type", "source_id", name="uq_payout_source"),
        # An index, not a constraint: added to a live table without rebuilding it (SQLite).
        Index("uq_payouts_line_reference", "line_reference", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id"), index=True)
    method_id: Mapped[int | None] = mapped_column(ForeignKey("payout_methods.id"))
    kind: Mapped[str] = mapped_column(String(10))
    # The client's reference: X-Reference-Id for mobile money, the line reference in a bank
    # file, and what a statement line is matched on. A UUID chosen here, reused on retries.
    reference: Mapped[str] = mapped_column(String(36), unique=True)
    # What a bank file's line carries instead (banks take 16-20 characters, typed by people):
    # ``PO`` + base 32 + a check character (portal/payouts/references.py). Statements may echo
    # either; both match.
    line_reference: Mapped[str | None] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)  # base units of the project's token
    decimals: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(8))
    narrative: Mapped[str] = mapped_column(String(140), default="")
    payee_name: Mapped[str] = mapped_column(Encrypted)
    payee_account: Mapped[str] = mapped_column(Encrypted)
    bank_code: Mapped[str] = mapped_column(String(20), default="")
    status: Mapped[str] = mapped_column(String(10), default=PENDING, index=True)
    failure_reason: Mapped[str] = mapped_column(String(255), default="")
    # The settlement (or other record) this payout pays; no foreign key while that table is
    # built elsewhere. ``source_type`` "settlement" and its id, or "manual" and None.
    source_type: Mapped[str] = mapped_column(String(30), default="manual")
    source_id: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("payout_batches.id"), index=True)
    books: Mapped[str | None] = mapped_column(String(10))
    books_reason: Mapped[str] = mapped_column(String(255), default="")
    books_at: Mapped[datetime | None]
    send_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_checked_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

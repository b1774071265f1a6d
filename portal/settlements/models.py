"""A settlement (one vendor's cash-out in one project) and a settlement run (finance opening
one settlement per vendor for a period)."""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utcnow

REQUESTED = "requested"
APPROVED = "approved"
SETTLED_ON_CHAIN = "settled_on_chain"
PAYOUT_SENT = "payout_sent"
PAID = "paid"
PAYOUT_FAILED = "payout_failed"
FAILED = "failed"
RECONCILED = "reconciled"
STATUSES = (
    REQUESTED,
    APPROVED,
    SETTLED_ON_CHAIN,
    PAYOUT_SENT,
    PAID,
    PAYOUT_FAILED,
    FAILED,
    RECONCILED,
)
# Plain words for the phone and the staff list.
LABELS = {
    REQUESTED: _l("Waiting for approval"),
    APPROVED: _l("Approved"),
    SETTLED_ON_CHAIN: _l("Settled on chain"),
    PAYOUT_SENT: _l("Payment sent"),
    PAID: _l("Paid"),
    PAYOUT_FAILED: _l("Payment failed"),
    FAILED: _l("Failed"),
    RECONCILED: _l("Paid"),
}
# Staff tell paid from paid-and-matched-on-a-statement; the vendor needs only "Paid".
STAFF_LABELS = {**LABELS, RECONCILED: _l("Reconciled")}
TONES = {
    REQUESTED: "pending",
    APPROVED: "pending",
    SETTLED_ON_CHAIN: "pending",
    PAYOUT_SENT: "pending",
    PAID: "paid",
    PAYOUT_FAILED: "failed",
    FAILED: "failed",
    RECONCILED: "paid",
}
FINAL = (FAILED, RECONCILED)
# The reasons the portal itself writes into ``failure_reason`` (stored in English, as the
# audit trail reads them): shown in the reader's language. Any other text (a provider's, a
# person's) is shown as it was written.
REASONS = {
    "The chain refused the settlement.": _l("The chain refused the settlement."),
    "Not approved.": _l("Not approved."),
    "Cancelled.": _l("Cancelled."),
    "The payout failed.": _l("The payout failed."),
    "The payout could not be asked for.": _l("The payout could not be asked for."),
}
CLOSED_PREFIX = "Closed after a failed payout (value burned on chain): "


def reason_shown(text: str | None) -> str:
    """A stored failure reason, in the page's language where the portal wrote it."""
    if not text:
        return ""
    if text in REASONS:
        return str(REASONS[text])
    if text.startswith(CLOSED_PREFIX):
        return _(
            "Closed after a failed payout (value burned on chain): %(reason)s",
            reason=text[len(CLOSED_PREFIX) :],
        )
    return text


class SettlementRun(db.Model):
    __tablename__ = "settlement_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    # "vendor id: why" per line, for the run's page (no PII: ids and plain reasons).
    skipped: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Settlement(db.Model):
    __tablename__ = "settlements"
    __table_args__ = (Index("ix_settlements_project_vendor", "project_id", "vendor_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # base units of the project's token
    method_id: Mapped[int | None] = mapped_column(
        ForeignKey("payout_methods.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(20), default=REQUESTED, index=True)
    # True while the chain has burned the amount (set on chain.settled, cleared on a reorg):
    # a failed settlement whose value is burned gives nothing back on chain.
    burned: Mapped[bool] = mapped_column(Boolean, default=False)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("settlement_runs.id", ondelete="SET NULL"), index=True
    )
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    by_vendor: Mapped[bool] = mapped_column(Boolean, default=False)
    approval_id: Mapped[int | None] = mapped_column(
        ForeignKey("approval_requests.id", ondelete="SET NULL")
    )
    chain_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    chain_tx_id: Mapped[int | None] = mapped_column(ForeignKey("chain_txs.id", ondelete="SET NULL"))
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id", ondelete="SET NULL"))
    payout_tries: Mapped[int] = mapped_column(Integer, default=0)
    # Paying again after a payout failed, to another account than the one approved: the
    # account asked for and its approval request, until that request is decided.
    repay_method_id: Mapped[int | None] = mapped_column(
        ForeignKey("payout_methods.id", ondelete="SET NULL")
    )
    repay_approval_id: Mapped[int | None] = mapped_column(
        ForeignKey("approval_requests.id", ondelete="SET NULL")
    )
    failure_reason: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]
    settled_at: Mapped[datetime | None]
    payout_sent_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    reconciled_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

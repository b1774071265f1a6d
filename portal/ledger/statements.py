"""A vendor's statement for one project and period: what reached them on chain, and when.

A redemption counts on the day it settled on chain (the tokens reached the vendor's address),
not the day it was charged: the opening balance is every settled redemption before the first
day, the closing balance adds those settled within the period. Payments still on their way at
the end of the period are listed apart, as pending, and counted in neither balance. The
statement is built from values only (``Statement``), so the PDF is drawn off the request's loop
(``portal.offload``) without the database session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from portal import events
from portal.beneficiaries.models import Beneficiary
from portal.chain.models import ProjectChain
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.i18n.formatting import number
from portal.ledger import display
from portal.projects.models import Project
from portal.redemptions.models import IN_FLIGHT, SETTLED, Redemption
from portal.redemptions.services import masked_name
from portal.timeutil import utcnow
from portal.vendors.models import Vendor

# A statement is a document to print: a period longer than this is more than anyone reads.
MAX_DAYS = 366


@dataclass(frozen=True)
class Line:
    day: str  # YYYY-MM-DD HH:MM, UTC
    reference: str
    beneficiary: str  # reference and masked name
    amount: str


@dataclass
class Statement:
    vendor: str
    project: str
    currency: str
    start: date
    end: date
    opening: str
    closing: str
    total: str
    count: int
    pending: str
    pending_count: int
    made_at: str
    lines: list[Line] = field(default_factory=list)
    # Cash-outs paid to the vendor in the period (settlements paid), subtracted from the balance.
    paid_out: str = ""
    paid_out_count: int = 0
    # Base units, for checks and tests.
    opening_units: int = 0
    closing_units: int = 0


def check_period(start: date | None, end: date | None) -> tuple[date, date]:
    """The period asked for, or a field error that says what to choose."""
    errors = {}
    if start is None:
        errors["start"] = _("Choose the first day.")
    if end is None:
        errors["end"] = _("Choose the last day.")
    if not errors and end < start:
        errors["end"] = _("The last day is before the first day.")
    if not errors and (end - start).days >= MAX_DAYS:
        errors["end"] = _("Choose a period of at most %(num)s days.", num=number(MAX_DAYS))
    if errors:
        raise ValidationFailed(errors)
    return start, end


def _since(day: date) -> datetime:
    return datetime.combine(day, time())


def build(vendor: Vendor, project: Project, start: date, end: date) -> Statement:
    """The statement's values for ``vendor`` in ``project`` from ``start`` to ``end`` (days, UTC,
    both included)."""
    pc = db.session.get(ProjectChain, project.id)
    first, after = _since(start), _since(end + timedelta(days=1))
    mine = (Redemption.vendor_id == vendor.id, Redemption.project_id == project.id)
    settled = (*mine, Redemption.status == SETTLED)
    opening = db.session.scalar(
        select(func.coalesce(func.sum(Redemption.amount), 0)).where(
            *settled, Redemption.settled_at < first
        )
    )
    rows = db.session.scalars(
        select(Redemption)
        .where(*settled, Redemption.settled_at >= first, Redemption.settled_at < after)
        .order_by(Redemption.settled_at, Redemption.id)
    ).all()
    people = {
        p.id: p
        for p in db.session.scalars(
            select(Beneficiary)
            .where(Beneficiary.id.in_({r.beneficiary_id for r in rows if r.beneficiary_id}))
            .options(selectinload(Beneficiary.pii))
        )
    }
    pending_count, pending = db.session.execute(
        select(func.count(), func.coalesce(func.sum(Redemption.amount), 0)).where(
            *mine, Redemption.status.in_(IN_FLIGHT), Redemption.created_at < after
        )
    ).one()
    total = sum(r.amount for r in rows)
    lines = []
    for r in rows:
        person = people.get(r.beneficiary_id)
        who = f"{person.ref} {masked_name(person)}" if person else "—"
        lines.append(
            Line(
                day=r.settled_at.strftime("%Y-%m-%d %H:%M"),
                reference=f"Payment {r.id}",
                beneficiary=who,
                amount=display.number(r.amount, pc),
            )
        )
    opening, pending = int(opening), int(pending)
    # Cash-outs paid (settlements, by the day the payout was confirmed) leave the balance.
    paid_before, cash_outs = _paid_out(vendor.id, project.id, first, after)
    opening -= paid_before
    paid_out = sum(s.amount for s in cash_outs)
    for s in cash_outs:
        lines.append(
            Line(
                day=s.paid_at.strftime("%Y-%m-%d %H:%M"),
                reference=f"Cash-out {s.id}",
                beneficiary="Paid out to the vendor"
                + (" (paid again: an earlier payment failed)" if s.payout_tries > 1 else ""),
                amount=f"-{display.number(s.amount, pc)}",
            )
        )
    # A cash-out whose payment failed is not paid out: it stays in the balance, listed with
    # its amount in brackets, until the try that pays it appears above.
    for s, failed_at in _failed_payments(vendor.id, project.id, first, after):
        lines.append(
            Line(
                day=failed_at.strftime("%Y-%m-%d %H:%M"),
                reference=f"Cash-out {s.id}",
                beneficiary="Payment failed: will be paid again",
                amount=f"({display.number(s.amount, pc)})",
            )
        )
    lines.sort(key=lambda line: line.day)
    return Statement(
        vendor=vendor.name,
        project=project.name,
        currency=display.currency(pc),
        start=start,
        end=end,
        opening=display.money(opening, pc),
        closing=display.money(opening + total - paid_out, pc),
        total=display.money(total, pc),
        count=len(rows),
        pending=display.money(pending, pc),
        pending_count=int(pending_count),
        made_at=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        lines=lines,
        opening_units=opening,
        closing_units=opening + total - paid_out,
        paid_out=display.money(paid_out, pc),
        paid_out_count=len(cash_outs),
    )


def _paid_out(vendor_id: int, project_id: int, first: datetime, after: datetime):
    """Paid before the period (base units) and the settlements paid within it."""
    from portal.settlements.models import PAID, RECONCILED, Settlement

    paid = (
        Settlement.vendor_id == vendor_id,
        Settlement.project_id == project_id,
        Settlement.status.in_((PAID, RECONCILED)),
    )
    before = db.session.scalar(
        select(func.coalesce(func.sum(Settlement.amount), 0)).where(
            *paid, Settlement.paid_at < first
        )
    )
    within = db.session.scalars(
        select(Settlement)
        .where(*paid, Settlement.paid_at >= first, Settlement.paid_at < after)
        .order_by(Settlement.paid_at, Settlement.id)
    ).all()
    return int(before), within


def _failed_payments(vendor_id: int, project_id: int, first: datetime, after: datetime):
    """Cash-outs whose payment failed in the period and is still owed: (settlement, when)."""
    from portal.payouts.models import Payout
    from portal.settlements.models import PAYOUT_FAILED, Settlement

    return db.session.execute(
        select(Settlement, Payout.finished_at)
        .join(Payout, Payout.id == Settlement.payout_id)
        .where(
            Settlement.vendor_id == vendor_id,
            Settlement.project_id == project_id,
            Settlement.status == PAYOUT_FAILED,
            Payout.finished_at >= first,
            Payout.finished_at < after,
        )
        .order_by(Payout.finished_at, Settlement.id)
    ).all()


def record(vendor: Vendor, project: Project, statement: Statement) -> None:
    events.money_trail_exported.send(
        vendor,
        action="vendor.statement",
        summary=(
            f"Statement of vendor {vendor.id} for project {project.id}, "
            f"{statement.start} to {statement.end}: {statement.count} redemptions"
        ),
        project_id=project.id,
        data={
            "vendor_id": vendor.id,
            "from": statement.start.isoformat(),
            "to": statement.end.isoformat(),
            "rows": statement.count,
        },
    )


def filename(vendor: Vendor, statement: Statement) -> str:
    return f"statement-vendor{vendor.id}-{statement.start}-{statement.end}.pdf"

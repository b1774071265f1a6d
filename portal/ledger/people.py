"""A beneficiary's money per project, for their page: what they were given, spent, have on the
way and have left, and the history behind it.

Entitled is what confirmed allocations gave (``allocated``); spent is what settled on chain;
pending is what is reserved for payments the chain has not confirmed yet; revoked was taken
back; remaining is what they can still pay with (``allocated - redeemed - revoked``, where
``redeemed`` is spent plus pending).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select

from portal.chain.models import ProjectChain
from portal.disbursements.models import (
    B_CONFIRMED,
    Disbursement,
    DisbursementBatch,
    DisbursementItem,
    Entitlement,
)
from portal.extensions import db
from portal.ledger import display
from portal.projects.models import Project
from portal.redemptions.models import IN_FLIGHT, SETTLED, Redemption
from portal.vendors.models import Vendor

HISTORY_LIMIT = 200  # per project and kind; older entries are in the redemptions list


@dataclass(frozen=True)
class Entry:
    when: datetime | None
    kind: str  # allocation, redemption
    what: str
    amount: str
    status: str


@dataclass
class ProjectMoney:
    project: Project
    entitled: str
    spent: str
    pending: str
    remaining: str
    revoked: str | None  # None when nothing was revoked
    history: list[Entry] = field(default_factory=list)


def money_of(beneficiary_id: int, project_ids: set[int] | list[int]) -> list[ProjectMoney]:
    """Per project in ``project_ids`` where the person was allocated or charged anything."""
    found = []
    for project in db.session.scalars(
        select(Project).where(Project.id.in_(project_ids)).order_by(Project.name, Project.id)
    ):
        pc = db.session.get(ProjectChain, project.id)
        entitlement = db.session.scalar(
            select(Entitlement).where(
                Entitlement.project_id == project.id, Entitlement.beneficiary_id == beneficiary_id
            )
        )
        payments = db.session.scalars(
            select(Redemption)
            .where(Redemption.project_id == project.id, Redemption.beneficiary_id == beneficiary_id)
            .order_by(Redemption.created_at.desc(), Redemption.id.desc())
            .limit(HISTORY_LIMIT)
        ).all()
        allocations = _allocations(project.id, beneficiary_id)
        if entitlement is None and not payments and not allocations:
            continue
        spent = sum(r.amount for r in payments if r.status == SETTLED)
        pending = sum(r.amount for r in payments if r.status in IN_FLIGHT)
        allocated = entitlement.allocated if entitlement else 0
        revoked = entitlement.revoked if entitlement else 0
        remaining = entitlement.remaining if entitlement else 0
        vendors = dict(
            db.session.execute(
                select(Vendor.id, Vendor.name).where(Vendor.id.in_({r.vendor_id for r in payments}))
            ).all()
        )
        history = [
            Entry(when, "allocation", title, display.money(amount, pc), status)
            for when, title, amount, status in allocations
        ] + [
            Entry(
                r.settled_at or r.created_at,
                "redemption",
                _(
                    "Paid at %(vendor)s (payment %(id)s)",
                    vendor=vendors.get(r.vendor_id) or _("a vendor"),
                    id=r.id,
                ),
                display.money(r.amount, pc),
                r.status,
            )
            for r in payments
        ]
        history.sort(key=lambda e: e.when or datetime.min, reverse=True)
        found.append(
            ProjectMoney(
                project=project,
                entitled=display.money(allocated, pc),
                spent=display.money(spent, pc),
                pending=display.money(pending, pc),
                remaining=display.money(remaining, pc),
                revoked=display.money(revoked, pc) if revoked else None,
                history=history,
            )
        )
    return found


def _allocations(project_id: int, beneficiary_id: int) -> list[tuple]:
    """Each disbursement that included the person: when its batch was confirmed (or its state)."""
    rows = db.session.execute(
        select(
            DisbursementBatch.updated_at,
            Disbursement.started_at,
            Disbursement.title,
            DisbursementItem.amount,
            DisbursementBatch.status,
        )
        .join(DisbursementBatch, DisbursementBatch.id == DisbursementItem.batch_id)
        .join(Disbursement, Disbursement.id == DisbursementItem.disbursement_id)
        .where(
            Disbursement.project_id == project_id,
            DisbursementItem.beneficiary_id == beneficiary_id,
        )
        .order_by(Disbursement.id.desc())
        .limit(HISTORY_LIMIT)
    ).all()
    return [
        (
            updated if status == B_CONFIRMED else started,
            _("Allocated by “%(title)s”", title=title),
            amount,
            "confirmed" if status == B_CONFIRMED else status,
        )
        for updated, started, title, amount, status in rows
    ]

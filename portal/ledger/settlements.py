"""Vendors' cash-outs as money rows: what a vendor may still cash out in a project, and the
one place a settlement's amount is written.

Available = redemptions settled on chain for the vendor in the project, minus every settlement
that still holds value (any not failed, and a failed one whose amount the chain burned already:
that value left the chain and is owed off chain, not available again). It is never more than the
vendor's balance on chain minus the settlements approved but not burned yet.

Two cash-outs at once must not together exceed it: ``add`` locks the vendor's assignment to the
project (``SELECT … FOR UPDATE``) before reading and inserting, so a second request for the same
vendor and project waits for the first to commit and then reads its settlement.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from portal.errors import Conflict
from portal.extensions import db
from portal.redemptions.models import SETTLED, Redemption
from portal.settlements.models import FAILED, REQUESTED, Settlement
from portal.vendors.models import VendorProject


def redeemed(project_id: int, vendor_id: int, until=None) -> int:
    """Redemptions settled on chain for the vendor in the project (up to ``until``)."""
    query = select(func.coalesce(func.sum(Redemption.amount), 0)).where(
        Redemption.project_id == project_id,
        Redemption.vendor_id == vendor_id,
        Redemption.status == SETTLED,
    )
    if until is not None:
        query = query.where(Redemption.settled_at < until)
    return int(db.session.scalar(query))


def holding(project_id: int, vendor_id: int) -> int:
    """Settlements that still take value: any not failed, and failed ones already burned."""
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(Settlement.amount), 0)).where(
                Settlement.project_id == project_id,
                Settlement.vendor_id == vendor_id,
                or_(Settlement.status != FAILED, Settlement.burned.is_(True)),
            )
        )
    )


def unburned(project_id: int, vendor_id: int) -> int:
    """Settlements taking value that the chain has not burned yet (still in the chain balance)."""
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(Settlement.amount), 0)).where(
                Settlement.project_id == project_id,
                Settlement.vendor_id == vendor_id,
                Settlement.status != FAILED,
                Settlement.burned.is_(False),
            )
        )
    )


def available(project_id: int, vendor_id: int, chain_balance: int | None, until=None) -> int:
    """What the vendor may cash out now; ``chain_balance`` is ``vendor_balance`` read from the
    chain (None: not read, the database figure alone)."""
    books = redeemed(project_id, vendor_id, until) - holding(project_id, vendor_id)
    if chain_balance is not None:
        books = min(books, chain_balance - unburned(project_id, vendor_id))
    return max(books, 0)


def lock(project_id: int, vendor_id: int) -> None:
    """Serialise cash-outs of one vendor in one project (PostgreSQL row lock; SQLite has one
    writer at a time anyway)."""
    found = db.session.scalar(
        select(VendorProject.id)
        .where(VendorProject.project_id == project_id, VendorProject.vendor_id == vendor_id)
        .with_for_update()
    )
    if found is None:
        raise Conflict(_("This vendor does not serve this project."))


def add(project_id: int, vendor_id: int, amount: int, chain_balance: int | None, **values):
    """Record a settlement of ``amount`` if that much is available, under the vendor's lock."""
    lock(project_id, vendor_id)
    left = available(project_id, vendor_id, chain_balance, values.pop("until", None))
    if amount <= 0:
        raise Conflict("A cash-out needs an amount above zero.")
    if amount > left:
        raise Conflict(_("That is more than is available to cash out."))
    row = Settlement(
        project_id=project_id, vendor_id=vendor_id, amount=amount, status=REQUESTED, **values
    )
    db.session.add(row)
    db.session.flush()
    row.chain_key = f"settlement-{row.id}"
    db.session.flush()
    return row

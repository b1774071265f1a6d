"""What the project owes its vendors and the chain has not settled yet, per vendor: for
finance to see who is waiting for money, and to export.

From the database in two grouped queries (no chain read per vendor, so a project with
thousands of vendors is one page): *earned* = redemptions settled on chain; *settled on chain*
= settlements the chain burned; *owed* = earned − settled on chain (the vendor's balance inside
the contract); of which *being cashed out* (asked, not burned yet) and *not asked yet*. Apart
from it, *to pay again*: settled on chain, but the payment failed, so it is owed off chain and
will be paid again. A vendor appears while anything is owed either way.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from sqlalchemy import case, func, select

from portal.beneficiaries.exports import escape_cell
from portal.extensions import db
from portal.money import amounts
from portal.redemptions.models import SETTLED, Redemption
from portal.settlements.models import FAILED, PAYOUT_FAILED, Settlement
from portal.vendors.models import Vendor

COLUMNS = (
    "vendor_id",
    "vendor",
    "earned",
    "settled_on_chain",
    "owed",
    "being_cashed_out",
    "not_asked_yet",
    "to_pay_again",
    "currency",
)


@dataclass(frozen=True)
class Owed:
    vendor_id: int
    name: str
    earned: int
    settled: int
    being_cashed_out: int
    to_pay_again: int = 0

    @property
    def owed(self) -> int:
        return self.earned - self.settled

    @property
    def not_asked(self) -> int:
        return max(self.owed - self.being_cashed_out, 0)


def of_project(project_id: int) -> list[Owed]:
    """Vendors with something owed, most owed first."""
    earned = dict(
        db.session.execute(
            select(Redemption.vendor_id, func.sum(Redemption.amount))
            .where(Redemption.project_id == project_id, Redemption.status == SETTLED)
            .group_by(Redemption.vendor_id)
        ).all()
    )
    taken = {
        vendor_id: (int(burned or 0), int(asked or 0), int(again or 0))
        for vendor_id, burned, asked, again in db.session.execute(
            select(
                Settlement.vendor_id,
                func.sum(case((Settlement.burned.is_(True), Settlement.amount), else_=0)),
                func.sum(
                    case(
                        (
                            (Settlement.burned.is_(False)) & (Settlement.status != FAILED),
                            Settlement.amount,
                        ),
                        else_=0,
                    )
                ),
                func.sum(case((Settlement.status == PAYOUT_FAILED, Settlement.amount), else_=0)),
            )
            .where(Settlement.project_id == project_id)
            .group_by(Settlement.vendor_id)
        ).all()
    }
    names = dict(
        db.session.execute(select(Vendor.id, Vendor.name).where(Vendor.id.in_(earned))).all()
    )
    found = [
        Owed(vendor_id, names.get(vendor_id, ""), int(total), *taken.get(vendor_id, (0, 0, 0)))
        for vendor_id, total in earned.items()
    ]
    return sorted(
        (o for o in found if o.owed > 0 or o.to_pay_again > 0),
        key=lambda o: (-o.owed - o.to_pay_again, o.name.lower(), o.vendor_id),
    )


def totals(rows: list[Owed]) -> dict[str, int]:
    return {
        "earned": sum(r.earned for r in rows),
        "settled": sum(r.settled for r in rows),
        "owed": sum(r.owed for r in rows),
        "being_cashed_out": sum(r.being_cashed_out for r in rows),
        "not_asked": sum(r.not_asked for r in rows),
        "to_pay_again": sum(r.to_pay_again for r in rows),
    }


def to_csv(rows: list[Owed], decimals: int, currency: str) -> bytes:
    """One line per vendor, then a total line; amounts as plain decimal text, every cell
    escaped against spreadsheet formulas."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)

    def line(vendor_id, name, figures):
        writer.writerow(
            [
                escape_cell(value)
                for value in (
                    vendor_id,
                    name,
                    *(amounts.plain(f, decimals) for f in figures),
                    currency,
                )
            ]
        )

    for r in rows:
        line(
            r.vendor_id,
            r.name,
            (r.earned, r.settled, r.owed, r.being_cashed_out, r.not_asked, r.to_pay_again),
        )
    t = totals(rows)
    figures = ("earned", "settled", "owed", "being_cashed_out", "not_asked", "to_pay_again")
    line("", "Total", tuple(t[name] for name in figures))
    return out.getvalue().encode("utf-8")

"""A settlement run: finance opens one settlement per vendor of a project for a period.

Each vendor with something available (redemptions settled on chain before the end of the
period, less what is already being cashed out) and a default payout method gets a settlement
waiting for approval; the others are listed as skipped with the reason.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import events
from portal.errors import DomainError
from portal.extensions import db
from portal.ledger import settlements as ledger
from portal.payouts import methods
from portal.projects.models import Project
from portal.settlements import services
from portal.settlements.models import SettlementRun
from portal.vendors.models import Vendor, VendorProject

# Why a vendor was left out of a run, stored in English; the page shows the reader's language.
SKIP_REASONS = {
    "the chain could not be read": _l("the chain could not be read"),
    "nothing to cash out": _l("nothing to cash out"),
    "no default payout method": _l("no default payout method"),
}


def open_run(project: Project, period_from, period_to, user_id: int) -> SettlementRun:
    if period_to < period_from:
        raise DomainError(_("The last day comes before the first."))
    until = datetime.combine(period_to + timedelta(days=1), time.min)
    run = SettlementRun(
        project_id=project.id,
        period_from=period_from,
        period_to=period_to,
        opened_by_id=user_id,
        created_count=0,
        total=0,
        skipped="",
    )
    db.session.add(run)
    db.session.flush()
    skipped = []
    vendors = db.session.execute(
        select(Vendor.id)
        .join(VendorProject, VendorProject.vendor_id == Vendor.id)
        .where(VendorProject.project_id == project.id)
        .order_by(Vendor.name)
    ).scalars()
    for vendor_id in list(vendors):
        balance = services.chain_balance(project.id, vendor_id)
        if balance is None:
            skipped.append(f"{vendor_id}|the chain could not be read")
            continue
        ledger.lock(project.id, vendor_id)
        left = ledger.available(project.id, vendor_id, balance, until)
        if left <= 0:
            skipped.append(f"{vendor_id}|nothing to cash out")
            continue
        if methods.default_of(vendor_id) is None:
            skipped.append(f"{vendor_id}|no default payout method")
            continue
        services.request(
            project,
            vendor_id,
            left,
            method_id=None,
            user_id=user_id,
            run_id=run.id,
            until=until,
            balance=balance,
        )
        run.created_count += 1
        run.total += left
    run.skipped = "\n".join(skipped)
    db.session.flush()
    events.settlement_run_opened.send(
        run,
        action="settlement.run_opened",
        summary=f"Settlement run {run.id} opened for {period_from} to {period_to}: "
        f"{run.created_count} settlements, {len(skipped)} vendors skipped",
        project_id=project.id,
        data={"run_id": run.id, "created": run.created_count, "total": run.total},
    )
    return run


def skipped_of(run: SettlementRun) -> list[dict]:
    rows = []
    for line in filter(None, (run.skipped or "").split("\n")):
        vendor_id, why = line.split("|", 1)
        vendor = db.session.get(Vendor, int(vendor_id))
        # Stored in English (a run is opened once, read by many): shown in the reader's.
        rows.append({"vendor": vendor, "why": str(SKIP_REASONS.get(why, why))})
    return rows

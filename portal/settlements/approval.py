"""A settlement waits for someone else's approval (``settlement.approve``); a second approver
above the project's threshold. The approval signs the burn; the payout and its callback finish
the request later (``Outcome(executed=False)``, then ``mark_executed`` when paid)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.approvals import kinds
from portal.extensions import db
from portal.settlements import services
from portal.settlements.models import Settlement
from portal.vendors.models import Vendor


def describe(request) -> str:
    row = db.session.get(Settlement, request.subject_id)
    vendor = db.session.get(Vendor, row.vendor_id) if row else None
    return _(
        "Settle %(amount)s to %(vendor)s",
        amount=services.money(request.project_id, request.amount),
        vendor=vendor.name if vendor else _("a vendor"),
    )


def execute(request, approver_id: int) -> kinds.Outcome:
    return kinds.Outcome(result_id=services.execute_approved(request, approver_id), executed=False)


kinds.register(
    kinds.Kind(
        name=services.KIND,
        permission="settlement.approve",
        label=_l("Settlement"),
        describe=describe,
        execute=execute,
        subject_url=services.subject_url,
        one_open_per_subject=True,
    )
)

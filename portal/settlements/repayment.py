"""Paying a settlement again after its payout failed, without burning it again.

Why this way. Once the chain burned a settlement, its value has left the chain; a payout that
fails afterwards (the provider's FAILED, a bank line rejected, a statement showing the money
returned) leaves the settlement's amount owed to the vendor *off chain*. It stays on the
settlement that burned it, as a credit of exactly that amount (status ``payout_failed``), and is
paid by a new try of the same settlement: a new payout, never a second burn and never a
re-credit on chain (which would need the treasury's key for an off-chain fact). One settlement,
one burn, many payout tries, at most one of them paid: ``ledger-verify`` checks exactly that.

Who may ask. The vendor on the phone ("Pay me again") or finance on the settlement's page
("Retry the payout"). To the account the settlement was approved for, the try goes out at once:
that is the payment the approvers released, and it has not happened. To another account it is
money moving anew, so it waits for approval like a cash-out (someone other than the asker,
``settlement.approve``; two approvers above the project's threshold). Every step is audited
and pushed live.

Exactly once. Every try starts under the vendor's row lock (the same one new cash-outs take)
and moves the settlement with one conditional UPDATE from ``payout_failed``; the try's payout is
unique per (settlement, try number). A mobile-money try is sent only after the provider confirms
the earlier tries failed (``portal.payouts.sending``), and a late "paid after all" stops a try
that has not left the portal (``portal.payouts.services.paid_after_failure``).
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal.approvals import kinds
from portal.approvals import services as approvals
from portal.approvals.models import PENDING as REQUEST_PENDING
from portal.approvals.models import ApprovalRequest
from portal.chain import guardian
from portal.errors import Conflict, DomainError
from portal.extensions import db
from portal.ledger import settlements as ledger
from portal.payouts import methods
from portal.payouts.models import KIND_LABELS, PayoutMethod
from portal.projects.models import Project
from portal.settlements import services
from portal.settlements.models import (
    CLOSED_PREFIX,
    FAILED,
    LABELS,
    PAYOUT_FAILED,
    Settlement,
    reason_shown,
)
from portal.timeutil import utcnow
from portal.transitions import current_status
from portal.vendors.models import Vendor

KIND = "settlement_repay"
SENT, ASKED = "sent", "asked"


def owed_again(project_id: int, vendor_id: int) -> int:
    """Burned on chain, payout failed, not paid yet: what the vendor will be paid again."""
    return int(
        db.session.scalar(
            select(func.coalesce(func.sum(Settlement.amount), 0)).where(
                Settlement.project_id == project_id,
                Settlement.vendor_id == vendor_id,
                Settlement.status == PAYOUT_FAILED,
            )
        )
    )


def waiting_approval(row: Settlement) -> ApprovalRequest | None:
    """The pending request to pay this settlement again to another account, if any."""
    if row.repay_approval_id is None:
        return None
    ask = db.session.get(ApprovalRequest, row.repay_approval_id)
    return ask if ask is not None and ask.status == REQUEST_PENDING else None


def repay(
    row: Settlement,
    method_id: int | None,
    *,
    user_id: int | None = None,
    by_vendor: bool = False,
) -> str:
    """Pay a settlement whose payout failed again: ``SENT`` when the new payout is asked for
    now (the approved account), ``ASKED`` when another account waits for approval."""
    ledger.lock(row.project_id, row.vendor_id)
    guardian.ensure_moving(row.project_id)
    db.session.refresh(row)
    if current_status(Settlement, row.id) != PAYOUT_FAILED:
        raise Conflict(_("This cash-out is not waiting to be paid again."))
    if waiting_approval(row) is not None:
        raise Conflict(_("Paying it again to another account already waits for approval."))
    wanted = method_id or row.method_id
    method = methods.get(row.vendor_id, wanted) if wanted else methods.default_of(row.vendor_id)
    if method is None:
        raise DomainError(_("Add a payout method first: we need to know where to pay."))
    who = "the vendor" if by_vendor else f"user {user_id}"
    if method.id == row.method_id:
        if not services.pay_again(row, method.id, user_id, f"paid again by {who}"):
            raise DomainError(
                reason_shown(row.failure_reason) or _("The payout could not be asked for.")
            )
        return SENT
    project = db.session.get(Project, row.project_id)
    ask = approvals.ask(
        KIND,
        project,
        subject_id=row.id,
        amount=row.amount,
        note=f"Pay settlement {row.id} again, to another account (asked by {who})",
        user_id=user_id,
    )
    db.session.execute(
        Settlement.__table__.update()
        .where(Settlement.id == row.id)
        .values(repay_method_id=method.id, repay_approval_id=ask.id)
    )
    db.session.refresh(row)
    services.announce(
        row,
        "settlement.repay_asked",
        f"to be paid again to another account, asked by {who}; waits for approval",
    )
    return ASKED


def retry_payout(row: Settlement, method_id: int | None, user_id: int) -> str:
    """Finance pays a settlement whose payout failed again (``repay``, as staff)."""
    if current_status(Settlement, row.id) != PAYOUT_FAILED:
        raise Conflict(
            _(
                "This settlement is %(status)s.",
                status=str(LABELS.get(row.status, row.status)).lower(),
            )
        )
    return repay(row, method_id, user_id=user_id)


def close_failed(row: Settlement, reason: str, user_id: int) -> None:
    """Finance ends what is owed: the vendor was paid another way (in cash, by hand), with why.
    The amount stays settled on chain and is no longer owed."""
    reason = " ".join((reason or "").split())[:200]
    if not reason:
        raise DomainError(_("Say why: paid by hand, or what is owed."))
    if waiting_approval(row) is not None:
        raise Conflict(_("Paying it again waits for approval: reject that request first."))
    if not services.move(
        row,
        (PAYOUT_FAILED,),
        FAILED,
        f"closed as failed by user {user_id}: {reason}",
        failed_at=utcnow(),
        failure_reason=f"{CLOSED_PREFIX}{reason}"[:255],
    ):
        raise Conflict(_("Only a settlement whose payout failed can be closed."))


def execute(request: ApprovalRequest, approver_id: int) -> kinds.Outcome:
    """The last approval of paying again to another account: the new payout is asked for in
    this unit of work; a settlement no longer waiting refuses the approval."""
    row = db.session.get(Settlement, request.subject_id)
    if row is None:
        raise Conflict(_("This settlement is gone."))
    ledger.lock(row.project_id, row.vendor_id)
    db.session.refresh(row)
    if current_status(Settlement, row.id) != PAYOUT_FAILED or row.repay_approval_id != request.id:
        raise Conflict(_("This cash-out is no longer waiting to be paid again."))
    if row.repay_method_id is None:
        raise Conflict(_("The account asked for was removed; ask again with another one."))
    method_id = row.repay_method_id
    _clear(row)
    if not services.pay_again(
        row, method_id, approver_id, f"paid again to another account, approved by {approver_id}"
    ):
        raise Conflict(reason_shown(row.failure_reason) or _("The payout could not be asked for."))
    return kinds.Outcome(result_id=row.payout_id, executed=True)


def _clear(row: Settlement) -> None:
    db.session.execute(
        Settlement.__table__.update()
        .where(Settlement.id == row.id)
        .values(repay_method_id=None, repay_approval_id=None)
    )
    db.session.refresh(row)


def on_approval(sender, *, action: str, **_) -> None:
    if not isinstance(sender, ApprovalRequest) or sender.kind != KIND:
        return
    if action not in ("approval.rejected", "approval.cancelled"):
        return
    row = db.session.get(Settlement, sender.subject_id)
    if row is None or row.repay_approval_id != sender.id:
        return
    _clear(row)
    services.announce(
        row,
        "settlement.repay_refused",
        "not paid again to another account ("
        + ("rejected" if action.endswith("rejected") else "cancelled")
        + "); it can be paid again to the account approved before",
    )


def describe(request) -> str:
    row = db.session.get(Settlement, request.subject_id)
    vendor = db.session.get(Vendor, row.vendor_id) if row else None
    method = (
        db.session.get(PayoutMethod, row.repay_method_id) if row and row.repay_method_id else None
    )
    amount = services.money(request.project_id, request.amount)
    name = vendor.name if vendor else _("a vendor")
    if method is None:
        return _(
            "Pay %(amount)s to %(vendor)s again, to another account (the first payment failed)",
            amount=amount,
            vendor=name,
        )
    return _(
        "Pay %(amount)s to %(vendor)s again, to %(kind)s %(account)s (the first payment failed)",
        amount=amount,
        vendor=name,
        kind=str(KIND_LABELS[method.kind]).lower(),
        account=methods.mask(method.account_number),
    )


def connect() -> None:
    from portal import events

    events.approval_changed.connect(on_approval, weak=False)


kinds.register(
    kinds.Kind(
        name=KIND,
        permission="settlement.approve",
        label=_l("Paying a cash-out again"),
        describe=describe,
        execute=execute,
        subject_url=services.subject_url,
        one_open_per_subject=True,
    )
)

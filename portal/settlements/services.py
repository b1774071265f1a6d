"""The settlement flow: ask, approve, burn on chain, pay out, reconcile.

requested → approved → settled_on_chain → payout_sent → paid → reconciled, or failed.
Every move is one conditional UPDATE (``portal.transitions.change``): events that arrive twice,
late or out of order (a retried job, a reorg, a callback racing a poll) match no row and change
nothing. Each move is audited (``events.settlement_changed``) and emitted live.

Failure rule. Before the chain burns the amount (rejected, cancelled, or the burn failed for
good) the settlement is ``failed`` and its amount is available again. After the burn the value
has left the chain, so a failed payout cannot simply "give the balance back": the settlement
moves to ``payout_failed``: its amount is owed to the vendor off chain and is paid again by a
new try of the same settlement, never a second burn (``portal.settlements.repayment``: the
vendor or finance asks; another account needs approval). A payout returned after it was paid (a
statement line) does the same. Finance may instead close it as ``failed`` with a reason (paid
by hand). Such a settlement keeps ``burned`` set, so its amount is never offered as a new
cash-out: the credit is the settlement itself.
"""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import select

from portal import events
from portal.approvals import services as approvals
from portal.approvals.models import APPROVED as REQUEST_APPROVED
from portal.approvals.models import ApprovalRequest
from portal.chain import guardian, txmanager
from portal.chain import settlement as chain
from portal.errors import Conflict, DomainError, NotFound
from portal.extensions import db
from portal.ledger import display
from portal.ledger import settlements as ledger
from portal.payouts import methods
from portal.payouts import services as payouts
from portal.payouts.models import Payout
from portal.projects import services as projects
from portal.projects.models import Project
from portal.settlements import live
from portal.settlements.models import (
    APPROVED,
    FAILED,
    PAID,
    PAYOUT_FAILED,
    PAYOUT_SENT,
    RECONCILED,
    REQUESTED,
    SETTLED_ON_CHAIN,
    Settlement,
    reason_shown,
)
from portal.timeutil import utcnow
from portal.transitions import change, current_status

KIND = "settlement"
SOURCE = "settlement"
KEY_PREFIX = "settlement-"


# --------------------------------------------------------------------------- reading


def chain_balance(project_id: int, vendor_id: int) -> int | None:
    """The vendor's balance on chain, or None when the chain cannot be read now."""
    try:
        return chain.vendor_balance(project_id, vendor_id)
    except Exception:  # a node being down must not break the page: None says "unknown"
        return None


def available(project_id: int, vendor_id: int) -> int:
    return ledger.available(project_id, vendor_id, chain_balance(project_id, vendor_id))


def money(project_id: int, amount: int) -> str:
    from portal.chain import setup

    return display.money(amount, setup.state(project_id))


def get_visible(user, settlement_id: int) -> Settlement:
    row = db.session.get(Settlement, settlement_id)
    if row is None:
        raise NotFound(_("No such settlement."))
    projects.get_visible(user, row.project_id)
    return row


def of_vendor(vendor_id: int, limit: int = 50) -> list[Settlement]:
    return list(
        db.session.scalars(
            select(Settlement)
            .where(Settlement.vendor_id == vendor_id)
            .order_by(Settlement.id.desc())
            .limit(limit)
        )
    )


# --------------------------------------------------------------------------- asking


def request(
    project: Project,
    vendor_id: int,
    amount: int,
    *,
    method_id: int | None,
    user_id: int | None = None,
    by_vendor: bool = False,
    run_id: int | None = None,
    until=None,
    balance: int | None = None,
) -> Settlement:
    """Ask to cash out ``amount`` base units for the vendor; it waits for approval."""
    projects.ensure_writable(project)
    guardian.ensure_moving(project.id)
    method = methods.get(vendor_id, method_id) if method_id else methods.default_of(vendor_id)
    if method is None:
        raise DomainError(_("Add a payout method first: we need to know where to pay."))
    if balance is None:
        balance = chain_balance(project.id, vendor_id)
    if balance is None:
        raise Conflict(_("The chain cannot be read just now; try again in a minute."))
    row = ledger.add(
        project.id,
        vendor_id,
        amount,
        balance,
        method_id=method.id,
        requested_by_id=user_id,
        by_vendor=by_vendor,
        run_id=run_id,
        until=until,
    )
    ask = approvals.ask(
        KIND,
        project,
        subject_id=row.id,
        amount=amount,
        note=f"Cash-out by vendor {vendor_id}",
        user_id=user_id,
    )
    row.approval_id = ask.id
    db.session.flush()
    announce(row, "settlement.requested", f"requested ({money(project.id, amount)})")
    return row


# --------------------------------------------------------------------------- moving


def announce(row: Settlement, action: str, what: str) -> None:
    """Audit a step of the settlement (``settlement_changed``) and push its status live."""
    events.settlement_changed.send(
        row,
        action=action,
        summary=f"Settlement {row.id} of vendor {row.vendor_id} {what}",
        project_id=row.project_id,
        data={
            "settlement_id": row.id,
            "vendor_id": row.vendor_id,
            "amount": row.amount,
            "status": row.status,
            "payout_id": row.payout_id,
        },
    )
    live.emit(row)


def move(row: Settlement, from_states, to_state: str, what: str, *, where=(), **values) -> bool:
    """One conditional step of the settlement, announced when this call made it."""
    db.session.flush()
    if not change(Settlement, row.id, from_states, to_state, where=where, **values):
        return False
    db.session.refresh(row)
    announce(row, f"settlement.{to_state}", what)
    return True


def execute_approved(request_row: ApprovalRequest, approver_id: int) -> int:
    """The final approval: sign the burn in this unit of work (sent after commit)."""
    row = db.session.get(Settlement, request_row.subject_id)
    if row is None or current_status(Settlement, row.id) != REQUESTED:
        raise Conflict(_("This settlement is no longer waiting for approval."))
    guardian.ensure_moving(row.project_id)
    try:
        tx = chain.prepare_settle(row.project_id, row.chain_key, row.vendor_id, row.amount)
    except txmanager.Reverted as exc:
        raise Conflict(
            _("The chain would refuse this settlement: %(reason)s", reason=exc.reason)
        ) from None
    move(row, (REQUESTED,), APPROVED, "approved", approved_at=utcnow(), chain_tx_id=tx.id)
    return row.id


def _pay(row: Settlement, method_id: int | None = None, user_id: int | None = None) -> bool:
    """Ask for the payout once the chain burned the amount; idempotent per attempt."""
    tries = row.payout_tries + 1
    source_type = SOURCE if tries == 1 else f"{SOURCE}.{tries}"
    savepoint = db.session.begin_nested()
    try:
        payout = payouts.request_payout(
            row.project_id,
            row.vendor_id,
            row.amount,
            method_id=method_id or row.method_id,
            narrative=f"Settlement {row.id}",
            source_type=source_type,
            source_id=row.id,
            user_id=user_id,
        )
    except DomainError as exc:
        savepoint.rollback()
        db.session.execute(
            Settlement.__table__.update()
            .where(Settlement.id == row.id)
            .values(failure_reason=str(exc)[:255])
        )
        db.session.refresh(row)
        return False
    savepoint.commit()
    return move(
        row,
        (SETTLED_ON_CHAIN, PAYOUT_FAILED),
        PAYOUT_SENT,
        f"payout {payout.id} asked for",
        payout_id=payout.id,
        payout_tries=tries,
        payout_sent_at=utcnow(),
        method_id=payout.method_id,
        failure_reason="",
    )


def pay_again(row: Settlement, method_id: int, user_id: int | None, what: str) -> bool:
    """A new payout try of a settlement whose payout failed (``repayment`` decided who may);
    False, with the reason on the row, when the payout cannot be asked for."""
    if not _pay(row, method_id, user_id):
        return False
    announce(row, "settlement.paid_again", what)
    return True


def _by_key(key: str | None) -> Settlement | None:
    if not key or not key.startswith(KEY_PREFIX):
        return None
    return db.session.scalar(select(Settlement).where(Settlement.chain_key == key))


def on_chain(sender, *, action: str, data=None, **_) -> None:
    row = _by_key((data or {}).get("key"))
    if row is None:
        return
    if action == "chain.settled":
        db.session.execute(
            Settlement.__table__.update().where(Settlement.id == row.id).values(burned=True)
        )
        db.session.refresh(row)
        # A burn the chain reported failed and then included after all (re-sent, or final
        # later than thought) is value gone from chain: the vendor is paid for it. A settlement
        # closed after a failed payout has a payout already and is left alone.
        if move(
            row,
            (APPROVED, FAILED),
            SETTLED_ON_CHAIN,
            "settled on chain",
            where=(Settlement.payout_id.is_(None),),
            settled_at=utcnow(),
            failed_at=None,
            failure_reason="",
        ):
            _pay(row)
    elif action == "chain.settle_undone":
        db.session.execute(
            Settlement.__table__.update().where(Settlement.id == row.id).values(burned=False)
        )
        db.session.refresh(row)
        move(row, (SETTLED_ON_CHAIN,), APPROVED, "waiting again for the chain (reorg)")
        # Its payout failed already, so nothing was paid: the same as above, and the failed
        # payout stays in the history (a new one is asked once the burn is final again).
        move(
            row,
            (PAYOUT_FAILED,),
            APPROVED,
            "waiting again for the chain (reorg)",
            payout_id=None,
        )
    elif action == "chain.settle_failed":
        move(
            row,
            (REQUESTED, APPROVED),
            FAILED,
            "failed on chain; the amount is available again",
            where=(Settlement.burned.is_(False),),
            failed_at=utcnow(),
            failure_reason="The chain refused the settlement.",
        )


def _settlement_of(payout: Payout) -> Settlement | None:
    source = payout.source_type or ""
    if source != SOURCE and not source.startswith(f"{SOURCE}."):
        return None
    return db.session.get(Settlement, payout.source_id) if payout.source_id else None


def _executed(row: Settlement) -> None:
    if row.approval_id is None:
        return
    ask = db.session.get(ApprovalRequest, row.approval_id)
    if ask is not None and current_status(ApprovalRequest, ask.id) == REQUEST_APPROVED:
        approvals.mark_executed(ask)


def on_payout(sender, *, action: str, **_) -> None:
    if not isinstance(sender, Payout):
        return
    row = _settlement_of(sender)
    if row is None:
        return
    mine = (Settlement.payout_id == sender.id,)
    if action == "payout.paid":
        late = f"paid after all: payout {sender.id}, recorded failed, was confirmed paid late"
        if move(row, (PAYOUT_SENT,), PAID, "paid", where=mine, paid_at=utcnow()) or move(
            row,
            (PAYOUT_FAILED,),
            PAID,
            late,
            paid_at=utcnow(),
            payout_id=sender.id,
            failure_reason="",
            repay_method_id=None,
            repay_approval_id=None,
        ):
            _executed(row)
        else:
            db.session.refresh(row)
            if row.payout_id != sender.id or row.status == FAILED:
                # Another try of the same value was on its way or paid already, or finance
                # closed it as paid another way: the vendor got it twice. Recorded for
                # finance to recover; ``ledger-verify`` lists it.
                announce(
                    row,
                    "settlement.paid_twice",
                    f"paid twice: payout {sender.id} was confirmed paid while the same amount "
                    "was already paid or on its way; recover it from the vendor",
                )
                return
        if sender.books:
            move(row, (PAID,), RECONCILED, "reconciled", where=mine, reconciled_at=utcnow())
    elif action == "payout.booked":
        move(row, (PAID,), RECONCILED, "reconciled", where=mine, reconciled_at=utcnow())
    elif action == "payout.failed":
        why = (sender.failure_reason or "The payout failed.")[:255]
        # From paid or reconciled too: a statement showed the money returned.
        if move(
            row,
            (PAYOUT_SENT, PAID, RECONCILED),
            PAYOUT_FAILED,
            f"payout failed; {money(row.project_id, row.amount)} will be paid again",
            where=(*mine, Settlement.burned.is_(True)),
            failure_reason=why,
            paid_at=None,
            reconciled_at=None,
        ):
            return
        # A reorg undid the burn after the payout was asked, and the payout failed: nothing
        # left the chain and nothing was paid. Wait for the chain again (the burn is re-sent);
        # once it is final a new payout is asked, and if the chain refuses it the amount is
        # available again.
        move(
            row,
            (PAYOUT_SENT, PAID, RECONCILED),
            APPROVED,
            "payout failed; waiting again for the chain (reorg)",
            where=(*mine, Settlement.burned.is_(False)),
            payout_id=None,
            failure_reason=why,
            paid_at=None,
            reconciled_at=None,
        )


def on_approval(sender, *, action: str, **_) -> None:
    if not isinstance(sender, ApprovalRequest) or sender.kind != KIND:
        return
    if action in ("approval.rejected", "approval.cancelled"):
        row = db.session.get(Settlement, sender.subject_id)
        if row is not None:
            move(
                row,
                (REQUESTED,),
                FAILED,
                "not approved; the amount is available again",
                failed_at=utcnow(),
                failure_reason="Not approved." if action.endswith("rejected") else "Cancelled.",
            )


# --------------------------------------------------------------------------- finance


def send_payout(row: Settlement, user_id: int) -> None:
    """For a settlement burned on chain whose payout could not be asked for (no method then)."""
    if current_status(Settlement, row.id) != SETTLED_ON_CHAIN:
        raise Conflict(_("Only a settlement settled on chain and not paid out yet can be sent."))
    if not _pay(row, None, user_id):
        raise DomainError(
            reason_shown(row.failure_reason) or _("The payout could not be asked for.")
        )


def subject_url(request_row) -> str:
    return url_for("settlements.show", settlement_id=request_row.subject_id)


def connect() -> None:
    events.chain_settlement_changed.connect(on_chain, weak=False)
    events.payout_changed.connect(on_payout, weak=False)
    events.approval_changed.connect(on_approval, weak=False)
    from portal.settlements import repayment

    repayment.connect()

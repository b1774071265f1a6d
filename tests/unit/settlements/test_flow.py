"""The settlement flow end to end on the in-process chain: ask, approve, burn, pay, reconcile;
and each failure path with what becomes available again."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.approvals import services as approvals
from portal.approvals.models import EXECUTED, ApprovalRequest
from portal.audit.models import AuditEntry
from portal.chain import settlement as chain
from portal.chain import txmanager
from portal.chain.models import ChainTx
from portal.errors import Conflict, DomainError
from portal.extensions import db
from portal.payouts import services as payouts
from portal.payouts.models import FAILED as PAYOUT_FAILED_STATUS
from portal.payouts.models import PAID as PAYOUT_PAID
from portal.payouts.models import SENT, Payout
from portal.projects import services as projects
from portal.reconciliation.chainside import chain_side
from portal.settlements import repayment, services
from portal.settlements.models import (
    APPROVED,
    FAILED,
    PAID,
    PAYOUT_FAILED,
    PAYOUT_SENT,
    RECONCILED,
    REQUESTED,
    Settlement,
)


def _members(project, *users):
    projects.set_members(project, {u.id for u in users})
    db.session.commit()


def _ask(project, vendor, amount, user=None):
    row = services.request(
        project,
        vendor.id,
        amount,
        method_id=None,
        user_id=user.id if user else None,
        by_vendor=user is None,
    )
    db.session.commit()
    return row


def _approve(row, user):
    ask = db.session.get(ApprovalRequest, row.approval_id)
    approvals.approve(ask, user)
    db.session.commit()
    db.session.refresh(row)


def _paid(payout_id):
    assert payouts.move(payout_id, (SENT, "pending"), SENT, why="test sent") or True
    assert payouts.move(payout_id, (SENT,), PAYOUT_PAID, why="test provider says paid")
    db.session.commit()


def test_a_vendors_cash_out_goes_from_request_to_paid_and_reconciled(world, worker):
    project, _pc, vendor, finance, approver = world
    _members(project, finance, approver)
    assert services.available(project.id, vendor.id) == 1250
    row = _ask(project, vendor, 1000)
    assert row.status == REQUESTED and row.by_vendor
    assert services.available(project.id, vendor.id) == 250
    _approve(row, approver)
    assert row.status == APPROVED and row.chain_tx_id
    worker.run("contracts")  # broadcast, mined, final: chain.settled -> payout asked for
    db.session.refresh(row)
    assert row.status == PAYOUT_SENT and row.burned
    assert chain.vendor_balance(project.id, vendor.id) == 250
    payout = db.session.get(Payout, row.payout_id)
    assert (payout.amount, payout.source_type, payout.source_id) == (1000, "settlement", row.id)
    assert chain_side([payout])[payout.id].status == "confirmed"
    _paid(payout.id)
    db.session.refresh(row)
    assert row.status == PAID
    assert db.session.get(ApprovalRequest, row.approval_id).status == EXECUTED
    # Matched on a statement later (books set after the provider said paid): reconciled.
    from portal.reconciliation import services as reconciliation

    reconciliation._book(payout.id, "matched", "line 1")
    db.session.commit()
    db.session.refresh(row)
    assert row.status == RECONCILED
    actions = db.session.scalars(
        select(AuditEntry.action).where(
            AuditEntry.target_type == "settlements", AuditEntry.target_id == str(row.id)
        )
    ).all()
    assert actions == [
        "settlement.requested",
        "settlement.approved",
        "settlement.settled_on_chain",
        "settlement.payout_sent",
        "settlement.paid",
        "settlement.reconciled",
    ]
    assert services.available(project.id, vendor.id) == 250
    # ledger-verify still agrees: the burn matches its ChainSettlement row, balances match.
    from portal.chain import ledger_verify

    checked = ledger_verify.verify([project.id]).projects[0]
    assert (checked.mismatch_count, checked.mismatches) == (0, [])
    assert checked.checked > 0
    # The vendor's statement subtracts the cash-out: 12.50 redeemed - 10.00 paid out.
    from datetime import date, timedelta

    from portal.ledger import statements

    today = date.today()
    statement = statements.build(vendor, project, today - timedelta(days=1), today)
    assert (statement.closing_units, statement.paid_out_count) == (250, 1)
    assert any(line.reference == f"Cash-out {row.id}" for line in statement.lines)
    later = statements.build(vendor, project, today + timedelta(days=1), today + timedelta(days=2))
    assert later.opening_units == 250


def test_nobody_cashes_out_more_than_is_available(world):
    project, _pc, vendor, _finance, _approver = world
    with pytest.raises(Conflict):
        _ask(project, vendor, 1251)
    db.session.rollback()
    _ask(project, vendor, 1000)
    with pytest.raises(Conflict):
        _ask(project, vendor, 251)
    db.session.rollback()
    assert db.session.scalar(select(func.count(Settlement.id))) == 1


def test_the_requester_cannot_approve_their_own_settlement(world):
    project, _pc, vendor, finance, approver = world
    _members(project, finance, approver)
    row = _ask(project, vendor, 500, user=finance)
    finance_admin = finance
    from portal.errors import Forbidden

    with pytest.raises(Forbidden):
        approvals.approve(db.session.get(ApprovalRequest, row.approval_id), finance_admin)


def test_a_rejected_settlement_gives_the_amount_back(world):
    project, _pc, vendor, finance, approver = world
    _members(project, finance, approver)
    row = _ask(project, vendor, 1250)
    approvals.reject(db.session.get(ApprovalRequest, row.approval_id), approver, "not now")
    db.session.commit()
    db.session.refresh(row)
    assert row.status == FAILED and not row.burned
    # The books give the amount back (the real chain here did burn it: the failure is forced).
    from portal.ledger import settlements as ledger

    assert ledger.available(project.id, vendor.id, None) == 1250


def test_a_failed_payout_after_the_burn_waits_for_finance(world, worker):
    project, _pc, vendor, finance, approver = world
    _members(project, finance, approver)
    row = _ask(project, vendor, 1250)
    _approve(row, approver)
    worker.run("contracts")
    db.session.refresh(row)
    first = row.payout_id
    assert payouts.move(first, ("pending", SENT), PAYOUT_FAILED_STATUS, why="t", reason="closed")
    db.session.commit()
    db.session.refresh(row)
    assert row.status == PAYOUT_FAILED and row.burned
    # The value is gone from chain: nothing is offered again while it is unresolved.
    assert services.available(project.id, vendor.id) == 0
    repayment.retry_payout(row, None, finance.id)
    db.session.commit()
    db.session.refresh(row)
    assert row.status == PAYOUT_SENT and row.payout_id != first and row.payout_tries == 2
    assert db.session.get(Payout, row.payout_id).source_type == "settlement.2"
    # A late event about the first payout moves nothing.
    payouts.move(first, (PAYOUT_FAILED_STATUS,), PAYOUT_PAID, why="late")
    db.session.commit()
    db.session.refresh(row)
    assert row.status == PAYOUT_SENT
    assert payouts.move(row.payout_id, ("pending", SENT), PAYOUT_FAILED_STATUS, why="t")
    db.session.commit()
    with pytest.raises(DomainError):
        repayment.close_failed(row, "  ", finance.id)
    repayment.close_failed(row, "paid in cash at the office", finance.id)
    db.session.commit()
    db.session.refresh(row)
    assert row.status == FAILED and row.burned
    assert services.available(project.id, vendor.id) == 0


def test_a_burn_the_chain_refuses_fails_the_settlement_and_gives_back(world, worker):
    project, _pc, vendor, finance, approver = world
    _members(project, finance, approver)
    row = _ask(project, vendor, 1000)
    _approve(row, approver)
    tx = db.session.get(ChainTx, row.chain_tx_id)
    # The chain gives up on it for good (e.g. the node refused it every time).
    from portal.chain import settlement as chain_settlement

    tx.status = "failed"
    db.session.flush()
    chain_settlement._on_final(tx)
    db.session.commit()
    db.session.refresh(row)
    assert row.status == FAILED and not row.burned
    # The books give the amount back (the real chain here did burn it: the failure is forced).
    from portal.ledger import settlements as ledger

    assert ledger.available(project.id, vendor.id, None) == 1250


def test_a_reorg_sends_the_settlement_back_to_approved_and_pays_once(world, worker):
    project, _pc, vendor, finance, approver = world
    _members(project, finance, approver)
    row = _ask(project, vendor, 1000)
    ask_id = row.approval_id
    db.session.get(ApprovalRequest, ask_id)
    _approve(row, approver)
    tx = db.session.get(ChainTx, row.chain_tx_id)
    db.session.commit()
    worker.run("contracts")
    db.session.refresh(row)
    payout_id = row.payout_id
    assert txmanager.roll_back(db.session.get(ChainTx, tx.id), "test reorg")
    db.session.commit()
    db.session.refresh(row)
    assert not row.burned and row.status == PAYOUT_SENT  # the payout is on its way already
    # The re-sent transaction is included and final again (as txmanager's recovery would).
    from portal.chain import settlement as chain_settlement

    again = db.session.get(ChainTx, tx.id)
    again.status = "confirmed"
    db.session.flush()
    chain_settlement._on_final(again)
    db.session.commit()
    db.session.refresh(row)
    assert row.burned and row.payout_id == payout_id
    assert db.session.scalar(select(func.count(Payout.id))) == 1


def test_above_the_threshold_a_second_approver_releases_it(world, worker, make_user):
    project, _pc, vendor, finance, approver = world
    second = make_user("finance approver")
    _members(project, finance, approver, second)
    approvals.set_threshold(project, 500, finance.id)
    db.session.commit()
    small = _ask(project, vendor, 400)
    assert db.session.get(ApprovalRequest, small.approval_id).approvals_needed == 1
    big = _ask(project, vendor, 800)
    assert db.session.get(ApprovalRequest, big.approval_id).approvals_needed == 2
    _approve(big, approver)
    assert big.status == REQUESTED and big.chain_tx_id is None  # one more approver needed
    with pytest.raises(Conflict):  # the same person cannot count twice
        _approve(big, approver)
    db.session.rollback()
    _approve(big, second)
    assert big.status == APPROVED and big.chain_tx_id

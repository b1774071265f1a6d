"""A payout that fails after the burn: the amount is owed again and paid by a new try of the same
settlement, never a second burn; another account needs approval; a statement's returned line,
a late "paid after all" and ``ledger-verify`` all agree with it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.approvals import services as approvals
from portal.approvals.models import ApprovalRequest
from portal.audit.models import AuditEntry
from portal.chain import ledger_verify
from portal.chain import settlement as chain
from portal.chain.models import ChainTx
from portal.errors import Conflict
from portal.extensions import db
from portal.payouts import methods
from portal.payouts import services as payouts
from portal.payouts.models import FAILED as P_FAILED
from portal.payouts.models import PAID as P_PAID
from portal.payouts.models import PENDING as P_PENDING
from portal.payouts.models import SENT as P_SENT
from portal.payouts.models import Payout
from portal.projects import services as projects
from portal.reconciliation import services as reconciliation
from portal.settlements import owed, repayment, services
from portal.settlements.models import (
    FAILED,
    PAID,
    PAYOUT_FAILED,
    PAYOUT_SENT,
    RECONCILED,
    Settlement,
)
from tests.unit.test_vendor_portal import sign_in


def _burned_and_failed(world, worker, amount=1250):
    """A vendor's cash-out approved, burned on chain, its payout failed at the provider."""
    project, _pc, vendor, finance, approver = world
    projects.set_members(project, {finance.id, approver.id})
    row = services.request(project, vendor.id, amount, method_id=None, by_vendor=True)
    db.session.commit()
    approvals.approve(db.session.get(ApprovalRequest, row.approval_id), approver)
    db.session.commit()
    worker.run("contracts")
    db.session.refresh(row)
    assert row.status == PAYOUT_SENT and row.burned
    assert payouts.move(row.payout_id, (P_PENDING,), P_SENT, why="in a bank batch")
    assert payouts.move(row.payout_id, (P_SENT,), P_FAILED, why="bank", reason="account closed")
    db.session.commit()
    db.session.refresh(row)
    assert row.status == PAYOUT_FAILED
    return row


def _shown(page: str) -> str:
    """The page without the sentences its scripts may write (the #i18n-strings block)."""
    return re.sub(r'<script type="application/json" id="i18n-strings">.*?</script>', "", page)


def _settle_txs() -> int:
    return db.session.scalar(select(func.count(ChainTx.id)))


def _second_account(vendor):
    method = methods.add(
        vendor,
        {"kind": "momo", "account_name": "Shop Owner", "account_number": "+256772000111"},
    )
    db.session.commit()
    return method


def _verify(project):
    return ledger_verify.verify([project.id]).projects[0]


def _tries(row) -> list[Payout]:
    return list(
        db.session.scalars(select(Payout).where(Payout.source_id == row.id).order_by(Payout.id))
    )


def _audited(row, action) -> int:
    return db.session.scalar(
        select(func.count()).where(AuditEntry.action == action, AuditEntry.target_id == str(row.id))
    )


def test_the_vendor_is_paid_again_to_the_same_account_without_a_second_burn(world, worker):
    project, _pc, vendor, *_ = world
    row = _burned_and_failed(world, worker)
    first = row.payout_id
    # The credit: owed again, not offered as a new cash-out, and the chain agrees.
    assert repayment.owed_again(project.id, vendor.id) == 1250
    assert services.available(project.id, vendor.id) == 0
    assert chain.vendor_balance(project.id, vendor.id) == 0
    found = _verify(project)
    assert (found.mismatch_count, found.owed_again) == (0, 1250), found.mismatches
    txs = _settle_txs()
    assert repayment.repay(row, None, by_vendor=True) == repayment.SENT
    db.session.commit()
    db.session.refresh(row)
    assert row.status == PAYOUT_SENT and row.payout_id != first and row.payout_tries == 2
    again = db.session.get(Payout, row.payout_id)
    assert (again.source_type, again.amount, again.method_id) == (
        "settlement.2",
        1250,
        row.method_id,
    )
    worker.run("contracts")
    assert _settle_txs() == txs  # no second burn went to the chain
    assert chain.vendor_balance(project.id, vendor.id) == 0
    with pytest.raises(Conflict):  # asked again while the new try is on its way
        repayment.repay(row, None, by_vendor=True)
    db.session.rollback()
    assert payouts.move(again.id, (P_PENDING,), P_SENT, why="batch")
    assert payouts.move(again.id, (P_SENT,), P_PAID, why="bank statement")
    db.session.commit()
    db.session.refresh(row)
    assert row.status == PAID and repayment.owed_again(project.id, vendor.id) == 0
    found = _verify(project)
    assert (found.mismatch_count, found.owed_again) == (0, 0), found.mismatches
    assert _audited(row, "settlement.paid_again") == 1
    assert _audited(row, "settlement.payout_failed") == 1


def test_another_account_waits_for_approval_above_the_threshold_by_two(world, worker, make_user):
    project, _pc, vendor, finance, approver = world
    row = _burned_and_failed(world, worker)
    second = make_user("finance approver")
    projects.set_members(project, {finance.id, approver.id, second.id})
    approvals.set_threshold(project, 1000, finance.id)
    db.session.commit()
    momo = _second_account(vendor)
    assert repayment.retry_payout(row, momo.id, finance.id) == repayment.ASKED
    db.session.commit()
    db.session.refresh(row)
    ask = repayment.waiting_approval(row)
    assert row.status == PAYOUT_FAILED and row.repay_method_id == momo.id
    assert ask.kind == repayment.KIND and ask.approvals_needed == 2 and ask.amount == 1250
    with pytest.raises(Conflict):  # one request at a time
        repayment.repay(row, None, by_vendor=True)
    db.session.rollback()
    with pytest.raises(Conflict):  # and not closed behind its back
        repayment.close_failed(row, "paid in cash", finance.id)
    db.session.rollback()
    approvals.approve(ask, approver)
    db.session.commit()
    db.session.refresh(row)
    assert row.status == PAYOUT_FAILED  # one more approver
    approvals.approve(db.session.get(ApprovalRequest, ask.id), second)
    db.session.commit()
    db.session.refresh(row)
    again = db.session.get(Payout, row.payout_id)
    assert row.status == PAYOUT_SENT and again.method_id == momo.id and again.kind == "momo"
    assert row.repay_approval_id is None and row.method_id == momo.id
    assert _audited(row, "settlement.repay_asked") == 1


def test_a_rejected_new_account_leaves_the_amount_owed_for_the_old_one(world, worker):
    project, _pc, vendor, finance, approver = world
    row = _burned_and_failed(world, worker)
    momo = _second_account(vendor)
    assert repayment.repay(row, momo.id, by_vendor=True) == repayment.ASKED
    db.session.commit()
    approvals.reject(repayment.waiting_approval(row), approver, "not the owner's number")
    db.session.commit()
    db.session.refresh(row)
    assert row.repay_approval_id is None and row.status == PAYOUT_FAILED
    assert _audited(row, "settlement.repay_refused") == 1
    assert repayment.owed_again(project.id, vendor.id) == 1250
    repayment.retry_payout(row, None, finance.id)
    db.session.commit()
    db.session.refresh(row)
    assert row.status == PAYOUT_SENT and db.session.get(Payout, row.payout_id).kind == "bank"


def test_a_statement_line_returned_after_payment_makes_it_owed_again(world, worker, tmp_path):
    project, _pc, vendor, finance, _approver = world
    row = _burned_and_failed(world, worker)
    repayment.retry_payout(row, None, finance.id)
    db.session.commit()
    db.session.refresh(row)
    payout = db.session.get(Payout, row.payout_id)
    payouts.move(payout.id, (P_PENDING,), P_SENT, why="batch")
    db.session.commit()

    def upload(lines):
        path = tmp_path / "statement.csv"
        path.write_text("reference,amount,status\n" + "".join(f"{line}\n" for line in lines))
        reconciliation.upload(project, path, "statement.csv", finance.id)
        db.session.commit()
        db.session.refresh(row)

    upload([f"{payout.line_reference},12.50,SUCCESSFUL"])
    assert row.status == RECONCILED
    # The bank sends it back: the next statement says so.
    upload([f"{payout.line_reference},12.50,RETURNED"])
    db.session.refresh(payout)
    assert payout.status == P_FAILED and "statement" in payout.failure_reason
    assert row.status == PAYOUT_FAILED and row.paid_at is None and row.reconciled_at is None
    assert repayment.owed_again(project.id, vendor.id) == 1250
    upload([f"{payout.line_reference},12.50,RETURNED"])  # the same file again changes nothing
    assert row.status == PAYOUT_FAILED and _audited(row, "settlement.payout_failed") == 2
    found = _verify(project)
    assert (found.mismatch_count, found.owed_again) == (0, 1250), found.mismatches


def test_a_late_success_before_the_retry_pays_it_once(world, worker):
    project, _pc, vendor, *_ = world
    row = _burned_and_failed(world, worker)
    first = row.payout_id
    assert payouts.paid_after_failure(first, "the provider says SUCCESSFUL")
    db.session.commit()
    db.session.refresh(row)
    assert row.status == PAID and row.payout_id == first
    assert repayment.owed_again(project.id, vendor.id) == 0
    with pytest.raises(Conflict):
        repayment.repay(row, None, by_vendor=True)
    db.session.rollback()
    assert _verify(project).mismatch_count == 0


def _retried(world, worker):
    """The failed cash-out, and finance's retry to the same account: (row, first, retry)."""
    finance = world[3]
    row = _burned_and_failed(world, worker)
    first = row.payout_id
    repayment.retry_payout(row, None, finance.id)
    db.session.commit()
    db.session.refresh(row)
    return row, first, row.payout_id


def test_a_late_success_stops_a_retry_not_sent_yet(world, worker):
    project = world[0]
    row, first, retry = _retried(world, worker)
    assert payouts.paid_after_failure(first, "the provider says SUCCESSFUL")
    db.session.commit()
    db.session.refresh(row)
    assert db.session.get(Payout, retry).status == P_FAILED
    assert row.status == PAID and row.payout_id == first
    assert [p.status for p in _tries(row)] == [P_PAID, P_FAILED]
    assert _verify(project).mismatch_count == 0


def test_a_late_success_after_the_retry_was_sent_is_flagged_as_paid_twice(world, worker):
    project = world[0]
    row, first, retry = _retried(world, worker)
    payouts.move(retry, (P_PENDING,), P_SENT, why="bank file sent")
    payouts.move(retry, (P_SENT,), P_PAID, why="bank statement")
    db.session.commit()
    assert payouts.paid_after_failure(first, "the provider says SUCCESSFUL")
    db.session.commit()
    db.session.refresh(row)
    assert row.status == PAID and row.payout_id == retry
    assert _audited(row, "settlement.paid_twice") == 1
    found = _verify(project)
    assert found.mismatch_count == 1 and "paid 2 times" in found.mismatches[0]


def test_closing_it_as_paid_in_cash_ends_what_is_owed(world, worker):
    project, _pc, vendor, finance, _approver = world
    row = _burned_and_failed(world, worker)
    repayment.close_failed(row, "paid in cash at the office", finance.id)
    db.session.commit()
    db.session.refresh(row)
    assert row.status == FAILED and row.burned
    assert repayment.owed_again(project.id, vendor.id) == 0
    assert services.available(project.id, vendor.id) == 0
    found = _verify(project)
    assert (found.mismatch_count, found.owed_again) == (0, 0), found.mismatches


def test_the_phone_shows_it_will_be_paid_again_and_pays_it_again(world, app, worker):
    project, _pc, vendor, *_ = world
    row = _burned_and_failed(world, worker)
    row_id, vendor_id, currency = row.id, vendor.id, project.currency
    client = app.test_client()
    sign_in(client, vendor)
    page = client.get("/vendor/cash-out").get_data(as_text=True)
    assert f"{currency}\u00a012.50 will be paid again" in page
    assert "from a payment that failed" in page and "Pay me again" in page
    answer = client.post(
        f"/vendor/cash-out/{row_id}/again",
        data={f"again{row_id}-method_id": methods.default_of(vendor_id).id},
    )
    assert answer.status_code == 302
    row = db.session.get(Settlement, row_id)
    assert row.status == PAYOUT_SENT and row.payout_tries == 2
    page = client.get("/vendor/cash-out").get_data(as_text=True)
    assert "will be paid again" not in _shown(page)
    # Another vendor's cash-out is not found.
    assert client.post("/vendor/cash-out/999999/again", data={}).status_code == 404


def test_the_staff_page_shows_what_is_owed_and_the_tries(world, app, worker, login):
    project, _pc, _vendor, finance, _approver = world
    row = _burned_and_failed(world, worker)
    row_id, method_id, project_id = row.id, row.method_id, project.id
    client = app.test_client()
    login(client, finance)
    page = client.get(f"/settlements/{row_id}").get_data(as_text=True)
    assert "owed to the vendor: pay it again" in page and "Retry the payout" in page
    owed_page = client.get(f"/projects/{project_id}/settlements/owed").get_data(as_text=True)
    assert f'id="to-pay-again-total">{project.currency}\u00a012.50' in owed_page
    (listed,) = owed.of_project(project_id)
    assert (listed.owed, listed.to_pay_again) == (0, 1250)
    answer = client.post(f"/settlements/{row_id}/retry", data={"method_id": method_id})
    assert answer.status_code == 302
    row = db.session.get(Settlement, row_id)
    assert row.status == PAYOUT_SENT
    page = client.get(f"/settlements/{row_id}").get_data(as_text=True)
    assert "Payout tries" in page and "owed to the vendor" not in _shown(page)


def test_the_vendor_statement_links_the_failed_payment_and_the_try_that_paid(world, worker):
    from datetime import timedelta

    from portal.ledger import statements
    from portal.timeutil import utcnow

    project, _pc, vendor, finance, _approver = world
    row = _burned_and_failed(world, worker)
    today = utcnow().date()

    def lines():
        found = statements.build(vendor, project, today - timedelta(days=1), today)
        return found, [(line.reference, line.beneficiary, line.amount) for line in found.lines]

    statement, shown = lines()
    assert (f"Cash-out {row.id}", "Payment failed: will be paid again", "(12.50)") in shown
    assert statement.paid_out_count == 0  # not paid: it stays in the balance
    repayment.retry_payout(row, None, finance.id)
    db.session.commit()
    db.session.refresh(row)
    payouts.move(row.payout_id, (P_PENDING,), P_SENT, why="batch")
    payouts.move(row.payout_id, (P_SENT,), P_PAID, why="statement")
    db.session.commit()
    statement, shown = lines()
    assert statement.paid_out_count == 1
    assert (
        f"Cash-out {row.id}",
        "Paid out to the vendor (paid again: an earlier payment failed)",
        "-12.50",
    ) in shown
    assert not [line for line in shown if "will be paid again" in line[1]]

"""The settlement's state machine under any order of its events: the chain settling, undoing
(reorg) or failing, the payout paid, failed or matched on a statement, finance retrying or
closing, a statement showing the money returned, the vendor asking to be paid again, each
possibly twice and in any order. Whatever happens, the end state agrees with the
payouts and nothing is paid twice."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal.errors import DomainError
from portal.extensions import db
from portal.payouts import methods
from portal.payouts import services as payouts
from portal.payouts.models import FAILED as P_FAILED
from portal.payouts.models import PAID as P_PAID
from portal.payouts.models import PENDING as P_PENDING
from portal.payouts.models import SENT as P_SENT
from portal.payouts.models import Payout
from portal.reconciliation import services as reconciliation
from portal.settlements import repayment, services
from portal.settlements.models import (
    APPROVED,
    FAILED,
    PAID,
    PAYOUT_FAILED,
    RECONCILED,
    Settlement,
)
from tests.support import chain

EVENTS = (
    "chain.settled",
    "chain.settle_undone",
    "chain.settle_failed",
    "payout.sent",
    "payout.paid",
    "payout.failed",
    "statement.matched",
    "finance.retry",
    "finance.close",
    "statement.returned",
    "vendor.repay",
)


@pytest.fixture
def scene(app, make_project, make_vendor):
    project = make_project(status="active")
    chain.pretend_deployed(project, decimals=2)
    vendor = make_vendor(project=project, status="approved")
    methods.add(
        vendor,
        {"kind": "bank", "account_name": "Shop", "account_number": "0123456789", "bank_code": "B1"},
    )
    db.session.commit()
    return project, vendor


def _current(row) -> Payout | None:
    return db.session.get(Payout, row.payout_id) if row.payout_id else None


def _apply(row: Settlement, event: str) -> None:
    payout = _current(row)
    if event.startswith("chain."):
        services.on_chain(None, action=event, data={"key": row.chain_key})
    elif event == "payout.sent" and payout:
        payouts.move(payout.id, (P_PENDING,), P_SENT, why="test")
    elif event == "payout.paid" and payout:
        payouts.move(payout.id, (P_PENDING, P_SENT), P_PAID, why="test")
    elif event == "payout.failed" and payout:
        payouts.move(payout.id, (P_PENDING, P_SENT), P_FAILED, why="test", reason="no")
    elif event == "statement.matched" and payout and payout.status in (P_SENT, P_PAID):
        with contextlib.suppress(DomainError):
            reconciliation._book(payout.id, "matched", "line")
    elif event == "finance.retry":
        with contextlib.suppress(DomainError):
            repayment.retry_payout(row, None, None)
    elif event == "statement.returned" and payout:
        payouts.returned(payout.id, "the statement says it came back")
    elif event == "vendor.repay":
        with contextlib.suppress(DomainError):
            repayment.repay(row, None, by_vendor=True)
    elif event == "finance.close":
        with contextlib.suppress(DomainError):
            repayment.close_failed(row, "paid by hand", 1)
    db.session.commit()
    db.session.refresh(row)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.sampled_from(EVENTS), max_size=14))
def test_any_order_of_events_gives_a_consistent_end_and_never_pays_twice(scene, events):
    project, vendor = scene
    row = Settlement(project_id=project.id, vendor_id=vendor.id, amount=700, status=APPROVED)
    db.session.add(row)
    db.session.flush()
    row.chain_key = f"settlement-{row.id}"
    db.session.commit()
    for event in events:
        _apply(row, event)
    mine = db.session.scalars(select(Payout).where(Payout.source_id == row.id)).all()
    mine = [p for p in mine if p.source_type.startswith("settlement")]
    paid = [p for p in mine if p.status == P_PAID]
    # Never paid twice, never more than one payout open at a time.
    assert len(paid) <= 1
    assert len([p for p in mine if p.status in (P_PENDING, P_SENT)]) <= 1
    assert all(p.amount == row.amount for p in mine)
    # A payout is asked for only after the chain burned the amount.
    if mine:
        assert "chain.settled" in events
    # The settlement agrees with its payouts.
    if paid:
        assert row.payout_id == paid[0].id
        assert row.status == (RECONCILED if paid[0].books else PAID)
    else:
        assert row.status not in (PAID, RECONCILED)
    if row.status == PAYOUT_FAILED:
        assert _current(row).status == P_FAILED and row.burned
    if row.status == FAILED and row.burned:
        assert "finance.close" in events  # burned value is closed only by finance, with a reason
    if row.status == FAILED and not row.burned:
        assert not paid

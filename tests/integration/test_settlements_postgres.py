"""Settlements under real concurrency on PostgreSQL: cash-outs of one vendor released together
never exceed what is available; the payout's callbacks, a late chain event and a statement
match racing each other move the settlement once each way and never pay twice; paying again
after a payout failed, racing a late success, an approval and the vendor's new cash-out, pays
the burned value once."""

from __future__ import annotations

import contextlib
import secrets
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from tests.support import pg_race

pytestmark = pytest.mark.integration
SEED = 17


@pytest.fixture(scope="module")
def pg_url(database_factory):
    return database_factory("portal_settlement")


@pytest.fixture(scope="module")
def app(race_app):
    with race_app(pool_size=12, CHAIN_EPHEMERAL=True) as app:
        yield app


def _world(redeemed: int):
    """A project with a token, a vendor with a bank account and ``redeemed`` settled on chain."""
    from portal.accounts import services as accounts
    from portal.chain.models import ProjectChain
    from portal.extensions import db
    from portal.payouts import methods
    from portal.projects import services as projects
    from portal.redemptions.models import SETTLED, Redemption
    from portal.timeutil import utcnow
    from portal.vendors import services as vendors

    roles = accounts.seed_roles()
    user = accounts.create_user(
        f"settle-{secrets.token_hex(5)}@example.org",
        "Finance",
        "a-long-test-password-x1",
        roles["admin"],
    )
    project = projects.create({"name": f"Settle {secrets.token_hex(4)}", "type": "cva"}, user)
    db.session.add(
        ProjectChain(
            project_id=project.id,
            chain_id=1,
            symbol="AID",
            decimals=2,
            contract_kind="Entitlements",
            status="deployed",
        )
    )
    phone = f"98{41_000_000 + secrets.randbelow(8_000_000):08d}"
    vendor = vendors.register(
        {"name": "Shop", "phone": phone, "category": "shop", "contact_name": "O"}, project
    )
    methods.add(
        vendor,
        {"kind": "bank", "account_name": "A", "account_number": "12345678", "bank_code": "AB"},
    )
    now = utcnow()
    db.session.add(
        Redemption(
            project_id=project.id,
            vendor_id=vendor.id,
            amount=redeemed,
            status=SETTLED,
            code_expires_at=now + timedelta(minutes=5),
            settled_at=now - timedelta(minutes=1),
        )
    )
    db.session.commit()
    return project.id, vendor.id, user.id


def _retrying(app, act, tries=5):
    """The framework runs a request again after a deadlock; so does this test's contender."""
    for left in range(tries - 1, -1, -1):
        try:
            return pg_race.in_own_session(app, act)
        except OperationalError:
            if not left:
                raise


@pytest.mark.parametrize("count", [2, 6])
def test_cash_outs_at_once_never_exceed_what_is_available(app, count):
    from portal.errors import DomainError
    from portal.extensions import db
    from portal.projects.models import Project
    from portal.settlements import services
    from portal.settlements.models import FAILED, Settlement

    with app.app_context():
        project_id, vendor_id, _ = _world(1_000)

    def ask(i, go):
        go()

        def act():
            project = db.session.get(Project, project_id)
            # The chain would say the vendor holds the whole amount: the books must hold.
            return services.request(
                project, vendor_id, 400, method_id=None, by_vendor=True, balance=1_000
            ).id

        try:
            return _retrying(app, act)
        except DomainError as exc:
            return str(exc)

    results = pg_race.race(count, ask, seed=SEED + count, what="a cash-out")
    assert not any(isinstance(r, Exception) for r in results), results
    made = [r for r in results if isinstance(r, int)]
    assert len(made) == min(count, 2)  # 400 + 400 fit in 1,000; a third does not
    with app.app_context():
        total = db.session.scalar(
            select(func.sum(Settlement.amount)).where(
                Settlement.vendor_id == vendor_id, Settlement.status != FAILED
            )
        )
        assert total == 400 * len(made) <= 1_000


def test_callbacks_a_late_chain_event_and_a_statement_race_and_pay_once(app):
    from portal.audit.models import AuditEntry
    from portal.errors import DomainError
    from portal.extensions import db
    from portal.payouts import services as payouts
    from portal.payouts.models import PAID, PENDING, SENT, Payout
    from portal.reconciliation import services as reconciliation
    from portal.settlements import services
    from portal.settlements.models import APPROVED, RECONCILED, Settlement

    with app.app_context():
        project_id, vendor_id, _ = _world(5_000)
        row = Settlement(project_id=project_id, vendor_id=vendor_id, amount=2_500, status=APPROVED)
        db.session.add(row)
        db.session.flush()
        row.chain_key = f"settlement-{row.id}"
        db.session.commit()
        settlement_id, key = row.id, row.chain_key

    def settled():
        services.on_chain(None, action="chain.settled", data={"key": key})

    # Eight deliveries of "the chain settled it" at once ask for one payout.
    def deliver(i, go):
        go()
        return _retrying(app, settled)

    results = pg_race.race(8, deliver, seed=SEED, what="a chain event")
    assert not any(isinstance(r, Exception) for r in results), results
    with app.app_context():
        payouts_made = db.session.scalars(
            select(Payout).where(Payout.source_id == settlement_id)
        ).all()
        assert len(payouts_made) == 1
        payout_id = payouts_made[0].id
        payouts.move(payout_id, (PENDING,), SENT, why="batch sent")
        db.session.commit()

    def contender(i, go):
        go()
        if i % 3 == 0:
            act = lambda: payouts.move(payout_id, (SENT,), PAID, why="provider")  # noqa: E731
        elif i % 3 == 1:
            act = settled
        else:

            def act():
                with contextlib.suppress(DomainError):
                    reconciliation._book(payout_id, "matched", "line")

        return _retrying(app, act)

    results = pg_race.race(9, contender, seed=SEED + 1, what="a callback")
    assert not any(isinstance(r, Exception) for r in results), results
    with app.app_context():
        row = db.session.get(Settlement, settlement_id)
        payout = db.session.get(Payout, payout_id)
        assert payout.status == PAID and payout.books == "matched"
        assert row.status == RECONCILED and row.payout_id == payout_id
        assert (
            db.session.scalar(
                select(func.count(Payout.id)).where(Payout.source_id == settlement_id)
            )
            == 1
        )
        for action in ("settlement.paid", "settlement.reconciled", "settlement.payout_sent"):
            assert (
                db.session.scalar(
                    select(func.count()).where(
                        AuditEntry.action == action, AuditEntry.target_id == str(settlement_id)
                    )
                )
                == 1
            ), action


# --------------------------------------------------------------------------- paying again

AGAIN = (
    "finance.retry",
    "vendor.repay",
    "vendor.repay_other",
    "approver.approve",
    "provider.late_success",
    "vendor.new_cash_out",
)


def _failed_after_burn():
    """A settlement of 2,500 burned on chain whose bank payout failed; the vendor also has a
    mobile-money account, and there is an approver. Returns the ids the race needs."""
    from portal.accounts import services as accounts
    from portal.extensions import db
    from portal.payouts import methods
    from portal.payouts import services as payouts
    from portal.payouts.models import FAILED, PENDING, SENT
    from portal.projects import services as projects
    from portal.projects.models import Project
    from portal.settlements import services
    from portal.settlements.models import APPROVED, PAYOUT_FAILED, Settlement
    from portal.vendors.models import Vendor

    project_id, vendor_id, finance_id = _world(5_000)
    approver = accounts.create_user(
        f"approver-{secrets.token_hex(5)}@example.org",
        "Approver",
        "a-long-test-password-x1",
        accounts.seed_roles()["finance approver"],
    )
    projects.set_members(db.session.get(Project, project_id), {finance_id, approver.id})
    momo = methods.add(
        db.session.get(Vendor, vendor_id),
        {"kind": "momo", "account_name": "A", "account_number": "+256772000222"},
    )
    row = Settlement(project_id=project_id, vendor_id=vendor_id, amount=2_500, status=APPROVED)
    db.session.add(row)
    db.session.flush()
    row.chain_key = f"settlement-{row.id}"
    row.method_id = methods.default_of(vendor_id).id
    db.session.flush()
    services.on_chain(None, action="chain.settled", data={"key": row.chain_key})
    first = row.payout_id
    payouts.move(first, (PENDING,), SENT, why="bank batch sent")
    payouts.move(first, (SENT,), FAILED, why="bank", reason="account closed")
    db.session.commit()
    assert db.session.get(Settlement, row.id).status == PAYOUT_FAILED
    return {
        "project_id": project_id,
        "vendor_id": vendor_id,
        "finance_id": finance_id,
        "approver_id": approver.id,
        "momo_id": momo.id,
        "settlement_id": row.id,
        "first_payout_id": first,
    }


def _again(app, ids, action):
    """One contender's step; a refusal (the settlement moved on, a request is pending) is an
    answer, not a failure."""
    from portal.accounts.models import User
    from portal.approvals import services as approvals
    from portal.errors import DomainError
    from portal.extensions import db
    from portal.payouts import services as payouts
    from portal.projects.models import Project
    from portal.settlements import repayment, services
    from portal.settlements.models import Settlement

    def act():
        row = db.session.get(Settlement, ids["settlement_id"])
        if action == "finance.retry":
            return repayment.retry_payout(row, None, ids["finance_id"])
        if action == "vendor.repay":
            return repayment.repay(row, None, by_vendor=True)
        if action == "vendor.repay_other":
            return repayment.repay(row, ids["momo_id"], by_vendor=True)
        if action == "approver.approve":
            ask = repayment.waiting_approval(row)
            if ask is None:
                return "nothing to approve"
            return approvals.approve(ask, db.session.get(User, ids["approver_id"])).status
        if action == "provider.late_success":
            return payouts.paid_after_failure(ids["first_payout_id"], "the provider: SUCCESSFUL")
        project = db.session.get(Project, ids["project_id"])
        return services.request(
            project, ids["vendor_id"], 2_500, method_id=None, by_vendor=True, balance=2_500
        ).id

    try:
        return _retrying(app, act)
    except DomainError as exc:
        return f"refused: {exc}"


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(st.sampled_from(AGAIN), min_size=2, max_size=5),
    st.integers(min_value=0, max_value=10_000),
)
def test_paying_again_racing_a_late_success_and_a_new_cash_out_pays_once(app, actions, seed):
    from portal.audit.models import AuditEntry
    from portal.extensions import db
    from portal.payouts.models import FAILED, PAID, PENDING, SENT, Payout
    from portal.settlements.models import FAILED as S_FAILED
    from portal.settlements.models import PAID as S_PAID
    from portal.settlements.models import PAYOUT_FAILED, PAYOUT_SENT, Settlement

    with app.app_context():
        ids = _failed_after_burn()

    def contender(i, go):
        go()
        return _again(app, ids, actions[i])

    results = pg_race.race(len(actions), contender, seed=seed, what="paying again")
    assert not any(isinstance(r, Exception) for r in results), results
    with app.app_context():
        row = db.session.get(Settlement, ids["settlement_id"])
        tries = db.session.scalars(
            select(Payout).where(Payout.source_id == row.id).order_by(Payout.id)
        ).all()
        tries = [p for p in tries if p.source_type.startswith("settlement")]
        live = [p for p in tries if p.status in (PENDING, SENT, PAID)]
        # Never two tries of the same burned value alive or paid at once.
        assert len(live) <= 1, [(p.id, p.status) for p in tries]
        assert all(p.amount == 2_500 for p in tries)
        if "provider.late_success" in actions:
            # The first try went through after all: nothing else of it is on its way.
            assert row.status == S_PAID and row.payout_id == ids["first_payout_id"]
            assert [p.id for p in live] == [ids["first_payout_id"]]
        elif live:
            assert row.status == PAYOUT_SENT and row.payout_id == live[0].id
        else:
            assert row.status == PAYOUT_FAILED
        assert all(p.status == FAILED for p in tries if p not in live)
        # The owed amount never became a new cash-out: the only one that fits is of the
        # vendor's other 2,500 on chain, and at most once.
        others = db.session.scalars(
            select(Settlement).where(
                Settlement.vendor_id == ids["vendor_id"],
                Settlement.id != row.id,
                Settlement.status != S_FAILED,
            )
        ).all()
        assert len(others) == min(actions.count("vendor.new_cash_out"), 1)
        assert not db.session.scalar(
            select(func.count()).where(
                AuditEntry.action == "settlement.paid_twice",
                AuditEntry.target_id == str(row.id),
            )
        )

"""Settlements under real concurrency on PostgreSQL: cash-outs of one vendor released together
never exceed what is available; the payout's callbacks, a late chain event and a statement
match racing each other move the settlement once each way and never pay twice."""

from __future__ import annotations

import contextlib
import secrets
from datetime import timedelta

import pytest
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

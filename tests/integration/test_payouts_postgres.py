"""Payout status changes under real concurrency on PostgreSQL: a provider callback's status
check and the periodic poll arriving together move a payout once (one audit entry, one event),
and two statements matching the same payout at once book it once."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, select

from tests.support import pg_race
from tests.support.momo_server import FakeMomo

pytestmark = pytest.mark.integration
SEED = 15


@pytest.fixture(scope="module")
def pg_url(database_factory):
    return database_factory("portal_payouts")


@pytest.fixture(scope="module")
def app(race_app):
    with race_app(
        pool_size=14,
        CHAIN_EPHEMERAL=True,
        OUTBOUND_ALLOW_HTTP=True,
        OUTBOUND_PRIVATE_HOSTS="127.0.0.1",
    ) as app:
        yield app


def _world(kind: str, amount: int = 150_050):
    """A project with a token, a vendor with one method of ``kind``, a payout already sent."""
    from portal.accounts import services as accounts
    from portal.chain.models import ProjectChain
    from portal.extensions import db
    from portal.payouts import methods, services
    from portal.payouts.models import PENDING, SENT
    from portal.projects import services as projects
    from portal.vendors import services as vendors

    roles = accounts.seed_roles()
    user = accounts.create_user(
        f"pay-{secrets.token_hex(5)}@example.org",
        "Payer",
        "a-long-test-password-x1",
        roles["admin"],
    )
    project = projects.create({"name": f"Pay {secrets.token_hex(4)}", "type": "cva"}, user)
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
    data = (
        {"kind": "momo", "account_name": "A", "account_number": "+256772123456"}
        if kind == "momo"
        else {"kind": "bank", "account_name": "A", "account_number": "12345678", "bank_code": "AB"}
    )
    methods.add(vendor, data)
    payout = services.request_payout(project.id, vendor.id, amount)
    services.move(payout.id, (PENDING,), SENT, why="test")
    db.session.commit()
    return project.id, payout.id, payout.reference


def _momo_settings(url: str, fake: FakeMomo):
    from portal.extensions import db
    from portal.payouts import momo
    from portal.settings import services as settings

    for key, value in (
        (momo.BASE_URL, url),
        (momo.TARGET_ENVIRONMENT, "sandbox"),
        (momo.API_USER, fake.api_user),
        (momo.API_KEY, fake.api_key),
        (momo.SUBSCRIPTION_KEY, fake.subscription_key),
    ):
        settings.set_value(key, value)
    db.session.commit()


@pytest.mark.parametrize("count", [2, 4, 8])
def test_callback_check_and_poll_together_move_the_payout_once(app, count):
    from portal.audit.models import AuditEntry
    from portal.extensions import db
    from portal.payouts import sending
    from portal.payouts.models import PAID, Payout

    with FakeMomo() as fake:
        with app.app_context():
            _momo_settings(fake.url, fake)
            _, payout_id, reference = _world("momo")
        fake.transfers[reference] = {
            "amount": "1500.50",
            "currency": "NPR",
            "externalId": reference,
            "payee": {"partyIdType": "MSISDN", "partyId": "256772123456"},
        }

        def check(i, go):
            with app.app_context():
                sending.MomoClient().token()  # ready: a token in hand before the start line
            go()
            return pg_race.in_own_session(app, lambda: sending.check(payout_id))

        results = pg_race.race(count, check, seed=SEED + count, what="a status check")
    assert all(r == "SUCCESSFUL" or r == "already paid" for r in results), results
    with app.app_context():
        assert db.session.get(Payout, payout_id).status == PAID
        moved = db.session.scalar(
            select(func.count()).where(
                AuditEntry.action == "payout.paid", AuditEntry.target_id == str(payout_id)
            )
        )
        assert moved == 1


@pytest.mark.parametrize("count", [2, 5])
def test_statements_matching_one_payout_at_once_book_it_once(app, count, tmp_path):
    from portal.errors import DomainError
    from portal.extensions import db
    from portal.payouts.models import PAID, Payout
    from portal.projects.models import Project
    from portal.reconciliation import services
    from portal.reconciliation.models import StatementLine

    with app.app_context():
        project_id, payout_id, reference = _world("bank", 2_000)
    path = tmp_path / "statement.csv"
    path.write_text(f"reference,amount\n{reference},20.00\n")

    def upload(i, go):
        go()

        def act():
            project = db.session.get(Project, project_id)
            return services.upload(project, path, "statement.csv", None).id

        try:
            return pg_race.in_own_session(app, act)
        except DomainError as exc:
            return str(exc)

    results = pg_race.race(count, upload, seed=SEED + count, what="an upload")
    assert not any(isinstance(r, Exception) for r in results), results
    with app.app_context():
        payout = db.session.get(Payout, payout_id)
        assert (payout.status, payout.books) == (PAID, "matched")
        matched = db.session.scalar(
            select(func.count()).where(
                StatementLine.payout_id == payout_id, StatementLine.state == "matched"
            )
        )
        assert matched == 1

"""The per-payer limits on PostgreSQL under real concurrency: many threads, each with its own
connection (as many sessions of one vendor, or many vendors), ask for codes and type wrong ones
for one beneficiary at the same instant. The database counts exactly."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import func, select

from tests.support import chain, pg_race

pytestmark = [pytest.mark.integration, pytest.mark.pg_heavy]

THREADS = 16  # within the pool of 10 plus its overflow of 10


@pytest.fixture(scope="module")
def app(app_factory, pg_url):
    return app_factory(
        pg_url,
        BENEFICIARY_CODE_LIMITS="3 per 10 minutes",
        BENEFICIARY_GUESS_LIMITS="4 per hour",
        VENDOR_CHARGE_LIMITS="1000 per minute",
    )


def _world(app) -> tuple[int, int, list[int]]:
    """An active project with a chain row, one entitled beneficiary, THREADS approved vendors."""
    from portal.accounts import services as accounts
    from portal.beneficiaries import services as beneficiaries
    from portal.extensions import db
    from portal.projects import services as projects
    from portal.vendors import services as vendors

    with app.app_context():
        roles = accounts.seed_roles()
        user = accounts.create_user(
            f"limits-{secrets.token_hex(4)}@example.org",
            "Limits",
            "a-long-test-pw-42",
            roles["admin"],
        )
        project = projects.create({"name": f"Limits {secrets.token_hex(3)}", "type": "cva"}, user)
        projects.change_status(project, "active")
        person = beneficiaries.create(
            {"name": "Payer", "phone": f"98{41000000 + secrets.randbelow(8_000_000):08d}"},
            project=project,
        )
        chain.pretend_deployed(project)
        chain.entitle(project, person, 100_000)
        vendor_ids = []
        for n in range(THREADS):
            vendor = vendors.register(
                {
                    "name": f"Shop {n}",
                    "category": "shop",
                    "contact_name": "Owner",
                    "phone": f"980{1_000_000 + secrets.randbelow(8_000_000):07d}",
                },
                project=project,
            )
            vendors.change_status(vendor, "approved")
            vendor_ids.append(vendor.id)
        db.session.commit()
        return project.id, person.id, vendor_ids


def _at_once(app, work) -> list[str]:
    """Run ``work(i)`` in THREADS threads released together; each outcome's name is returned."""
    from portal.extensions import db

    def contender(i: int, go) -> str:
        def step() -> str:
            db.session.connection()
            go()
            return work(i)

        return pg_race.in_own_session(app, step)

    results = pg_race.race(THREADS, contender, barrier_timeout=30, join_seconds=60)
    # The outcome of a thread that raised is the exception's class.
    return [type(r).__name__ if isinstance(r, Exception) else r for r in results]


def test_codes_and_wrong_guesses_per_payer_are_exact_under_concurrency(app):
    from portal.chain import setup
    from portal.comms.models import OutboxMessage
    from portal.extensions import db
    from portal.projects.models import Project
    from portal.redemptions import codes
    from portal.redemptions import services as redemptions
    from portal.redemptions.models import Redemption
    from portal.vendors.models import Vendor

    project_id, person_id, vendor_ids = _world(app)

    def start(i: int) -> str:
        redemptions.start(
            db.session.get(Vendor, vendor_ids[i]),
            db.session.get(Project, project_id),
            setup.state(project_id),
            db.session.get(redemptions.Beneficiary, person_id),
            100,
            "card",
        )
        return "started"

    outcomes = _at_once(app, start)
    assert sorted(outcomes) == ["Throttled"] * (THREADS - 3) + ["started"] * 3
    with app.app_context():
        started = db.session.scalars(
            select(Redemption).where(Redemption.project_id == project_id)
        ).all()
        assert len(started) == 3
        sent = db.session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.project_id == project_id, OutboxMessage.purpose == "redemption.code"
            )
        )
        assert sent == 3
        target = started[0]
        target_id, target_vendor = target.id, target.vendor_id

    def guess(i: int) -> str:
        result = redemptions.confirm(db.session.get(Vendor, target_vendor), target_id, "000000")
        return result.outcome

    outcomes = _at_once(app, guess)
    # Four wrong guesses counted for the person, however many came at once; the rest refused.
    counted = [o for o in outcomes if o in (codes.WRONG, codes.LOCKED)]
    assert len(counted) == 4 and outcomes.count("Throttled") == THREADS - 4, outcomes
    with app.app_context():
        assert db.session.get(Redemption, target_id).tries == 4

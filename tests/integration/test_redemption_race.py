"""Never twice, on PostgreSQL: the same code confirmed fifty times at once, from fifty threads
each with its own session, accepts one redemption, reserves once, signs one transfer in the
accepting transaction (no transfer job) and sends one chain transaction. The chain is the
in-process EVM; jobs run on the Redis broker."""

from __future__ import annotations

import re
import secrets

import pytest
from sqlalchemy import func, select

from tests.support import pg_race

pytestmark = [pytest.mark.integration, pytest.mark.pg_heavy]

THREADS = 50
# Small against the 20.00 allocated: were a code accepted twice, the entitlement would not stop
# it, so only the code's own conditional UPDATE keeps this test green.
AMOUNT = 100
CODE = re.compile(r"\b(\d{6})\b")


@pytest.fixture(scope="module")
def app(race_app):
    """A worker-role app as ``app_factory`` makes, with a pool large enough for every thread to
    hold its own connection at the same moment."""
    with race_app(
        pool_size=THREADS + 5,
        CHAIN_EPHEMERAL=True,
        CHAIN_RECEIPT_WAIT_SECONDS=2,
        REDEMPTION_SIGN_IN_REQUEST=True,
    ) as app:
        yield app


def _wait(app, check, what: str, timeout: float = 90):
    return pg_race.wait_for(app, check, what, timeout, every=0.2)


def _prepare(app) -> tuple[int, int, int, int]:
    """A deployed, funded project with one entitled beneficiary and one approved vendor."""
    from portal.accounts import services as accounts
    from portal.beneficiaries import services as beneficiaries
    from portal.chain import setup
    from portal.disbursements import services as disbursements
    from portal.disbursements.models import Disbursement
    from portal.extensions import db
    from portal.projects import services as projects
    from portal.vendors import services as vendors

    with app.app_context():
        roles = accounts.seed_roles()
        email = f"race-{secrets.token_hex(4)}@example.org"
        user = accounts.create_user(email, "Racer", "a-long-test-password", roles["admin"])
        project = projects.create({"name": f"Race {secrets.token_hex(3)}", "type": "cva"}, user)
        projects.change_status(project, "active")
        person = beneficiaries.create(
            {"name": "Payer", "phone": f"98{41000000 + secrets.randbelow(8_000_000):08d}"},
            project=project,
        )
        vendor = vendors.register(
            {
                "name": "Race Shop",
                "category": "shop",
                "contact_name": "Owner",
                "phone": f"980{1_000_000 + secrets.randbelow(8_000_000):07d}",
            },
            project=project,
        )
        vendors.change_status(vendor, "approved")
        setup.start_deploy(project, "RACE", 2, user.id)
        db.session.commit()
        ids = project.id, person.id, vendor.id, user.id
    project_id, person_id, vendor_id, user_id = ids

    def deployed():
        pc = setup.state(project_id)
        return pc is not None and pc.status == "deployed"

    _wait(app, deployed, "the contracts")
    with app.app_context():
        setup.start_funding(db.session.get(projects.Project, project_id), 10_000, "race", None)
        db.session.commit()
    _wait(app, lambda: setup.state(project_id).funded == 10_000, "the funding")
    with app.app_context():
        project = db.session.get(projects.Project, project_id)
        disbursement, _ = disbursements.create(
            project,
            title="Race allocation",
            amount=2_000,
            group_id=None,
            beneficiary_ids=[person_id],
            batch_size=10,
            user_id=user_id,
        )
        disbursements.start(disbursement, user_id)
        db.session.commit()
        disbursement_id = disbursement.id
    _wait(
        app,
        lambda: db.session.get(Disbursement, disbursement_id).status == "completed",
        "the allocation",
    )
    return project_id, person_id, vendor_id, user_id


def test_fifty_concurrent_confirmations_accept_once(app):
    from portal.chain import setup
    from portal.chain.models import ChainTx
    from portal.comms.models import OutboxMessage
    from portal.disbursements.models import Entitlement
    from portal.extensions import db
    from portal.jobs.broker import get_broker
    from portal.jobs.models import Job
    from portal.projects.models import Project
    from portal.redemptions import services as redemptions
    from portal.redemptions.models import Redemption
    from portal.vendors.models import Vendor
    from workers.runtime import start_worker

    get_broker(app).flush_all()
    worker = start_worker(app, threads=2)
    try:
        project_id, person_id, vendor_id, _ = _prepare(app)
        with app.app_context():
            redemption = redemptions.start(
                db.session.get(Vendor, vendor_id),
                db.session.get(Project, project_id),
                setup.state(project_id),
                db.session.get(redemptions.Beneficiary, person_id),
                AMOUNT,
                "card",
            )
            db.session.commit()
            redemption_id = redemption.id
            message = db.session.scalar(
                select(OutboxMessage)
                .where(OutboxMessage.purpose == "redemption.code")
                .order_by(OutboxMessage.id.desc())
                .limit(1)
            )
            code = CODE.search(message.body).group(1)

        def confirm(i: int, go) -> str:
            def step() -> str:
                # Each thread takes its own connection first, then all go at once.
                db.session.connection()
                vendor = db.session.get(Vendor, vendor_id)
                go()
                return redemptions.confirm(vendor, redemption_id, code).outcome

            return pg_race.in_own_session(app, step)

        results = pg_race.race(
            THREADS, confirm, barrier_timeout=30, join_seconds=60, what="a confirming thread"
        )
        # An exception is shown in the assertions below.
        outcomes = [f"error: {r!r}" if isinstance(r, Exception) else r for r in results]

        assert len(outcomes) == THREADS
        assert outcomes.count("accepted") == 1, sorted(set(outcomes))
        assert set(outcomes) == {"accepted", "used"}, sorted(set(outcomes))

        with app.app_context():
            held = db.session.scalar(
                select(Entitlement).where(
                    Entitlement.project_id == project_id, Entitlement.beneficiary_id == person_id
                )
            )
            assert (held.allocated, held.redeemed) == (2_000, AMOUNT)
            transfers = db.session.scalars(
                select(Job).where(Job.kind == "redemptions.transfer", Job.project_id == project_id)
            ).all()
            assert transfers == []  # signed by the accepting transaction itself
            signed = db.session.scalars(
                select(ChainTx).where(
                    ChainTx.ref_type == "redemption", ChainTx.ref_id == redemption_id
                )
            ).all()
            assert len(signed) == 1 and signed[0].nonce is not None

        def settled():
            row = db.session.get(Redemption, redemption_id)
            return row.status in ("settled", "failed") and row.status

        assert _wait(app, settled, "the transfer") == "settled"
        with app.app_context():
            txs = db.session.scalar(
                select(func.count())
                .select_from(ChainTx)
                .where(ChainTx.ref_type == "redemption", ChainTx.ref_id == redemption_id)
            )
            assert txs == 1
    finally:
        worker.stop()

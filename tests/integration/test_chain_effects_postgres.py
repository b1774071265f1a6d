"""Money effects of the chain applied exactly once, and undone exactly once, whatever the
interleaving: threads with their own PostgreSQL connections, released together by a barrier.

The chain is the app's in-process EVM; the states raced over are rebuilt from what really
happened on it ("mined, not yet recorded here"), which is the state a crash or a slow worker
leaves: the batch job's "found done on chain" path and a follow-up of the same batch both
reach the credit (once a 20.00 disbursement credited 26.00); two follow-ups of one funding;
two repairs that find the same transaction rolled back; two starts of one disbursement.
"""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, update

from tests.support import pg_race

pytestmark = pytest.mark.integration

THREADS = 6
SEEDS = (1, 2, 3)


@pytest.fixture(scope="module")
def app(race_app):
    from portal.demo import seed_demo
    from portal.extensions import db

    with race_app(
        pool_size=THREADS + 2,
        CHAIN_EPHEMERAL=True,
    ) as app:
        with app.app_context():
            seed_demo(count=24)  # deployed, funded, 20 people allocated on the in-process chain
            db.session.commit()
        yield app


def race(app, seed: int, act) -> list:
    """``act(i)`` in THREADS threads, each in its own app context (own session and
    connection), started together after a small seeded delay; results or exceptions."""

    def contender(i: int, go) -> object:
        def step() -> object:
            go()
            return act(i)

        return pg_race.in_own_session(app, step)

    return pg_race.race(THREADS, contender, seed=seed)


def _project():
    from portal.chain.models import ProjectChain
    from portal.extensions import db

    return db.session.scalar(select(ProjectChain).order_by(ProjectChain.project_id).limit(1))


def _allocations(project_id: int) -> dict[int, int]:
    from portal.disbursements.models import Entitlement
    from portal.extensions import db

    rows = db.session.execute(
        select(Entitlement.beneficiary_id, Entitlement.allocated).where(
            Entitlement.project_id == project_id
        )
    ).all()
    return dict(rows)


def _confirmed_disbursement(amount: int):
    """A disbursement to the demo group, sent and mined in one batch; its batch and tx."""
    from portal.beneficiaries.models import BeneficiaryGroup
    from portal.chain.demo import run_jobs_inline
    from portal.disbursements import services
    from portal.disbursements.models import DisbursementBatch
    from portal.extensions import db
    from portal.projects.models import Project

    pc = _project()
    project = db.session.get(Project, pc.project_id)
    group = db.session.scalar(
        select(BeneficiaryGroup).where(BeneficiaryGroup.project_id == pc.project_id)
    )
    disbursement, _ = services.create(
        project,
        title="race",
        amount=amount,
        group_id=group.id,
        beneficiary_ids=None,
        batch_size=100,
        user_id=None,
    )
    services.start(disbursement, None)
    db.session.commit()
    run_jobs_inline()
    db.session.commit()
    batch = db.session.scalar(
        select(DisbursementBatch).where(DisbursementBatch.disbursement_id == disbursement.id)
    )
    assert batch.status == "confirmed"
    return disbursement.id, batch.id, batch.tx_id


def _as_if_not_recorded(disbursement_id: int, batch_id: int, amount: int) -> None:
    """Mined on chain, not yet recorded here: what a worker that died after the receipt left."""
    from portal.chain.models import ChainEffect
    from portal.disbursements.models import (
        Disbursement,
        DisbursementBatch,
        DisbursementItem,
        Entitlement,
    )
    from portal.extensions import db

    people = select(DisbursementItem.beneficiary_id).where(DisbursementItem.batch_id == batch_id)
    pid = db.session.get(Disbursement, disbursement_id).project_id
    db.session.execute(
        update(Entitlement)
        .where(Entitlement.project_id == pid, Entitlement.beneficiary_id.in_(people))
        .values(allocated=Entitlement.allocated - amount)
    )
    db.session.execute(
        delete(ChainEffect).where(
            ChainEffect.kind == "batch.confirmed", ChainEffect.ref_id == batch_id
        )
    )
    db.session.execute(
        update(DisbursementBatch).where(DisbursementBatch.id == batch_id).values(status="sent")
    )
    db.session.execute(
        update(Disbursement).where(Disbursement.id == disbursement_id).values(status="running")
    )
    db.session.commit()


@pytest.mark.parametrize("seed", SEEDS)
def test_a_batch_is_credited_once_by_the_follow_up_and_the_found_done_path(app, seed):
    from portal.chain.models import ChainEffect, ChainTx
    from portal.disbursements import services
    from portal.disbursements.models import Disbursement
    from portal.extensions import db

    with app.app_context():
        amount = 100 + seed
        d_id, batch_id, tx_id = _confirmed_disbursement(amount)
        pid = _project().project_id
        credited = _allocations(pid)
        _as_if_not_recorded(d_id, batch_id, amount)
        db.session.remove()

    def act(i: int):
        if i % 2:
            return services.run_batch(batch_id)  # the batch job re-run after a crash
        services._on_final(db.session.get(ChainTx, tx_id))  # the follow-up of its transaction

    results = race(app, seed, act)
    assert not [r for r in results if isinstance(r, Exception)], results
    with app.app_context():
        assert _allocations(pid) == credited  # each person credited exactly once more
        effects = db.session.scalar(
            select(func.count()).select_from(ChainEffect).where(ChainEffect.ref_id == batch_id)
        )
        assert effects == 1
        assert db.session.get(Disbursement, d_id).status == "completed"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_funding_is_counted_once_by_concurrent_follow_ups(app, seed):
    from portal.chain import setup
    from portal.chain.demo import run_jobs_inline
    from portal.chain.models import ChainEffect, ChainTx, Funding, ProjectChain
    from portal.extensions import db
    from portal.projects.models import Project

    with app.app_context():
        pc = _project()
        pid = pc.project_id
        funding = setup.start_funding(db.session.get(Project, pid), 5000 + seed, "race", None)
        db.session.commit()
        run_jobs_inline()
        db.session.commit()
        funding = db.session.get(Funding, funding.id)
        assert funding.status == "confirmed"
        funded = db.session.get(ProjectChain, pid, populate_existing=True).funded
        # Mined, not yet counted here.
        db.session.execute(
            delete(ChainEffect).where(
                ChainEffect.kind == "funding", ChainEffect.ref_id == funding.id
            )
        )
        db.session.execute(update(Funding).where(Funding.id == funding.id).values(status="pending"))
        db.session.execute(
            update(ProjectChain)
            .where(ProjectChain.project_id == pid)
            .values(funded=ProjectChain.funded - funding.amount)
        )
        db.session.commit()
        funding_id, tx_id = funding.id, funding.tx_id
        db.session.remove()

    results = race(app, seed, lambda i: setup._on_final(db.session.get(ChainTx, tx_id)))
    assert not [r for r in results if isinstance(r, Exception)], results
    with app.app_context():
        assert db.session.get(ProjectChain, pid).funded == funded
        assert db.session.get(Funding, funding_id).status == "confirmed"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_rolled_back_batch_is_undone_once_and_credited_once_when_mined_again(app, seed):
    from portal.chain import txmanager
    from portal.chain.models import ChainTx
    from portal.disbursements.models import DisbursementBatch
    from portal.extensions import db

    with app.app_context():
        amount = 200 + seed
        _, batch_id, tx_id = _confirmed_disbursement(amount)
        pid = _project().project_id
        credited = _allocations(pid)
        db.session.remove()

    def act(i: int):
        return txmanager.roll_back(db.session.get(ChainTx, tx_id), "test")

    results = race(app, seed, act)
    assert sorted(map(repr, results)).count("True") == 1, results
    with app.app_context():
        after = _allocations(pid)
        changed = {b: credited[b] - after[b] for b in credited if credited[b] != after[b]}
        assert changed and set(changed.values()) == {amount}  # debited once, each
        assert db.session.get(DisbursementBatch, batch_id).status == "sent"
        tx = db.session.get(ChainTx, tx_id)
        assert tx.status == "pending" and tx.rollbacks == 1
        # The in-process chain still has it: the next follow-up finds it mined again.
        txmanager.follow_up(tx, wait_seconds=0)
        db.session.commit()
        assert _allocations(pid) == credited
        assert db.session.get(DisbursementBatch, batch_id).status == "confirmed"


@pytest.mark.parametrize("seed", SEEDS)
def test_two_starts_of_one_disbursement_start_it_once(app, seed):
    from portal.beneficiaries.models import BeneficiaryGroup
    from portal.disbursements import services
    from portal.disbursements.models import Disbursement
    from portal.errors import Conflict
    from portal.extensions import db
    from portal.jobs.models import Job
    from portal.projects.models import Project

    with app.app_context():
        pid = _project().project_id
        group = db.session.scalar(
            select(BeneficiaryGroup).where(BeneficiaryGroup.project_id == pid)
        )
        d, _ = services.create(
            db.session.get(Project, pid),
            title="twice",
            amount=1 + seed,
            group_id=group.id,
            beneficiary_ids=None,
            batch_size=100,
            user_id=None,
        )
        db.session.commit()
        d_id = d.id
        db.session.remove()

    results = race(app, seed, lambda i: services.start(db.session.get(Disbursement, d_id), None))
    wins = [r for r in results if not isinstance(r, Exception)]
    assert len(wins) == 1, results
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception)), results
    with app.app_context():
        batch_id = db.session.get(Disbursement, d_id).batches[0].id
        kinds = db.session.scalars(select(Job).where(Job.kind == "disbursement.batch")).all()
        jobs = sum(1 for job in kinds if job.payload.get("batch_id") == batch_id)
        assert jobs == 1


@pytest.mark.parametrize("seed", SEEDS)
def test_a_redemption_is_settled_or_failed_once_and_its_reservation_given_back_once(app, seed):
    """The chain answers twice at once (two follow-ups; a success and a failure report): one
    outcome wins, a failure gives the reservation back exactly once, and a rollback of the
    settling transaction makes it pending (submitted) again, once."""
    from datetime import timedelta

    from portal.chain.models import ChainTx
    from portal.disbursements.models import Entitlement
    from portal.extensions import db
    from portal.redemptions import transfer
    from portal.redemptions.models import Redemption
    from portal.timeutil import utcnow
    from portal.vendors.models import Vendor

    with app.app_context():
        pid = _project().project_id
        held = db.session.scalar(
            select(Entitlement).where(Entitlement.project_id == pid, Entitlement.allocated > 0)
        )
        vendor = db.session.scalar(select(Vendor).where(Vendor.status == "approved"))
        amount = 10 + seed
        # Reserved (as an accepted code does) and handed to the chain.
        db.session.execute(
            update(Entitlement)
            .where(Entitlement.id == held.id)
            .values(redeemed=Entitlement.redeemed + amount)
        )
        redemption = Redemption(
            project_id=pid,
            vendor_id=vendor.id,
            beneficiary_id=held.beneficiary_id,
            amount=amount,
            status="submitted",
            code_expires_at=utcnow() + timedelta(minutes=5),
        )
        db.session.add(redemption)
        db.session.commit()
        rid, eid = redemption.id, held.id
        reserved = db.session.get(Entitlement, eid).redeemed
        db.session.remove()

    def act(i: int):
        if i % 2:
            return transfer.settle(rid)
        return transfer.fail(rid, "reverted")

    results = race(app, seed, act)
    assert [r for r in results if r is True] == [True], results
    with app.app_context():
        redemption = db.session.get(Redemption, rid)
        redeemed = db.session.get(Entitlement, eid).redeemed
        if redemption.status == "failed":
            assert redeemed == reserved - amount  # given back once
            return
        assert redemption.status == "settled" and redeemed == reserved
        # The transaction that settled it is dropped by the chain, seen by two repairs at once.
        tx = db.session.scalar(select(ChainTx).where(ChainTx.status == "confirmed").limit(1))
        db.session.execute(update(Redemption).where(Redemption.id == rid).values(chain_tx_id=tx.id))
        db.session.commit()
        tx_id = tx.id
        db.session.remove()

    fake = type("Tx", (), {"ref_type": "redemption", "ref_id": rid, "id": tx_id})
    results = race(app, seed, lambda i: transfer.unsettle(fake))
    assert [r for r in results if r is True] == [True], results
    with app.app_context():
        assert db.session.get(Redemption, rid).status == "submitted"
        assert db.session.get(Entitlement, eid).redeemed == reserved  # still reserved


def test_insert_or_skip_tells_an_insert_from_a_skip_on_postgresql(app):
    """psycopg reports -1 rows for INSERT ... ON CONFLICT DO NOTHING: the answer must not
    come from the row count (an effect that was applied looked skipped)."""
    from portal.chain import effects
    from portal.chain.models import ChainEffect
    from portal.extensions import db
    from portal.timeutil import utcnow
    from portal.transitions import insert_or_skip

    with app.app_context():
        row = {"kind": "probe", "ref_id": 1, "amount": 0, "created_at": utcnow()}
        assert insert_or_skip(ChainEffect, row) is True
        assert insert_or_skip(ChainEffect, row) is None
        assert effects.apply("probe", 2) is True and effects.apply("probe", 2) is False
        assert effects.undo("probe", 2).amount == 0 and effects.undo("probe", 2) is None
        db.session.rollback()

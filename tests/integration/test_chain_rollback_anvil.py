"""Rollbacks on a real node that mines a block a second (anvil --block-time 1), with effects final
only five blocks deep, so transactions are confirmed first and re-checked until final.

- A reorg while a funding is confirmed but not yet final: the receipt vanishes, the funding is
  pending again, its stored transaction is sent again and mined again, counted once.
- A rollback deeper than finality (the node goes back to a state from before a disbursement
  whose batches were final): the chain watch finds the missing blocks by their stored hashes,
  raises an alert, puts the credits back to pending and sends the batches again.
- A nonce gap (nonces handed out whose transactions are gone): the watch fills it with no-ops
  and the waiting transaction is mined.
After each, the chain equals the database (``reconcile.check``).
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from tests.support.anvil import DEV_KEY, Anvil

pytestmark = pytest.mark.integration

CONFIRMATIONS = 5


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    node = Anvil("--block-time", "1", log_dir=tmp_path_factory.mktemp("anvil-rollback"))
    node.start()
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def app(node, race_app):
    from portal.demo import seed_demo
    from portal.extensions import db

    with (
        race_app(
            pool_size=3,
            WEB3_PROVIDER_URI=node.url,
            CHAIN_FAUCET_KEY=DEV_KEY,
            CHAIN_CONFIRMATIONS=str(CONFIRMATIONS),
            CHAIN_RECEIPT_WAIT_SECONDS=0,
            CHAIN_RESEND_SECONDS=0,
            CHAIN_POLL_SECONDS=0,
        ) as app,
        app.app_context(),
    ):
        seed_demo(count=12)  # not embedded: people and a group, no chain yet
        db.session.commit()
        yield app


def drive(until, what: str, timeout: float = 60, watch: bool = True, jobs: int = 20):
    """Run the chain jobs and the chain watch, as workers would, until ``until()`` holds."""
    from portal.chain import watch as chain_watch
    from portal.chain.demo import run_jobs_inline
    from portal.extensions import db

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_jobs_inline(limit=jobs)
        db.session.commit()
        if watch:
            chain_watch.run()
            db.session.commit()
        db.session.expire_all()
        if until():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {_state()}")


def _state() -> str:
    from portal.chain.models import ChainTx
    from portal.extensions import db

    rows = db.session.execute(
        select(
            ChainTx.id,
            ChainTx.purpose,
            ChainTx.nonce,
            ChainTx.status,
            ChainTx.final_at,
            ChainTx.error,
        )
    ).all()
    return "\n".join(map(str, rows))


def _all_final() -> bool:
    from portal.chain.models import ChainTx
    from portal.extensions import db

    return not db.session.scalar(
        select(func.count())
        .select_from(ChainTx)
        .where(ChainTx.nonce.is_not(None), ChainTx.final_at.is_(None))
    )


def _project():
    from portal.extensions import db
    from portal.projects.models import Project

    return db.session.scalar(select(Project).order_by(Project.id).limit(1))


def _deployed(project):
    from portal.chain import setup

    if setup.state(project.id) is None:
        setup.start_deploy(project, "RB", 2, None)
        from portal.extensions import db

        db.session.commit()
    drive(lambda: setup.state(project.id).status == "deployed" and _all_final(), "deployment")
    return setup.state(project.id)


def _chain_equals_database():
    from portal.chain import reconcile

    report = reconcile.check()
    assert report.projects and report.ok, report.differences


def test_a_reorg_before_finality_puts_the_funding_back_and_sends_it_again(app, node):
    from portal.chain import setup
    from portal.chain.models import ChainTx, Funding, ProjectChain
    from portal.extensions import db

    project = _project()
    _deployed(project)
    before = setup.state(project.id).funded
    snapshot = node.rpc("evm_snapshot")
    funding = setup.start_funding(project, 1_000_000, "reorg", None)
    db.session.commit()
    seen = {}

    def confirmed_not_final():
        f = db.session.get(Funding, funding.id)
        tx = db.session.get(ChainTx, f.tx_id) if f.tx_id else None
        if tx is not None and tx.status == "confirmed" and tx.final_at is None:
            seen["funded"] = db.session.get(ProjectChain, project.id).funded
            return True
        return False

    drive(confirmed_not_final, "the funding confirmed, not final", watch=False, jobs=1)
    assert seen["funded"] == before + 1_000_000  # shown at once, before finality

    assert node.rpc("evm_revert", snapshot) is True  # the blocks holding it are gone
    tx_id = db.session.get(Funding, funding.id).tx_id
    from portal.chain import txmanager

    tx = db.session.get(ChainTx, tx_id)
    txmanager.follow_up(tx, wait_seconds=0)  # the re-check finds the receipt gone
    db.session.commit()
    tx = db.session.get(ChainTx, tx_id)
    assert tx.rollbacks == 1
    assert db.session.get(ProjectChain, project.id).funded in (before, before + 1_000_000)

    drive(
        lambda: _all_final() and db.session.get(Funding, funding.id).status == "confirmed",
        "re-mined",
    )
    assert db.session.get(ProjectChain, project.id).funded == before + 1_000_000
    assert db.session.get(ChainTx, tx_id).rollbacks >= 1
    _chain_equals_database()


def test_a_rollback_deeper_than_finality_is_found_reported_and_repaired(app, node):
    from portal.beneficiaries.models import BeneficiaryGroup
    from portal.chain import alerts, setup
    from portal.chain.models import ChainAlert
    from portal.disbursements import services
    from portal.disbursements.models import Disbursement, Entitlement
    from portal.extensions import db

    project = _project()
    _deployed(project)
    if setup.state(project.id).funded < 10_000_000:
        setup.start_funding(project, 10_000_000, "deep", None)
        db.session.commit()
        drive(_all_final, "funding final")
    group = db.session.scalar(
        select(BeneficiaryGroup).where(BeneficiaryGroup.project_id == project.id)
    )
    before = dict(
        db.session.execute(select(Entitlement.beneficiary_id, Entitlement.allocated)).all()
    )
    snapshot = node.rpc("evm_snapshot")
    d, _ = services.create(
        project,
        title="deep",
        amount=700,
        group_id=group.id,
        beneficiary_ids=None,
        batch_size=4,
        user_id=None,
    )
    services.start(d, None)
    db.session.commit()
    drive(
        lambda: db.session.get(Disbursement, d.id).status == "completed" and _all_final(), "final"
    )
    alerts_before = db.session.scalar(select(func.count()).select_from(ChainAlert))

    assert node.rpc("evm_revert", snapshot) is True  # final batches gone: deeper than finality
    drive(
        lambda: db.session.scalar(
            select(func.count())
            .select_from(ChainAlert)
            .where(ChainAlert.kind == alerts.DEEP_ROLLBACK)
        ),
        "the deep rollback to be found",
    )
    drive(
        lambda: db.session.get(Disbursement, d.id).status == "completed" and _all_final(), "repair"
    )
    after = dict(
        db.session.execute(select(Entitlement.beneficiary_id, Entitlement.allocated)).all()
    )
    assert {b: after[b] - before.get(b, 0) for b in after if after[b] != before.get(b, 0)}
    assert set(after[b] - before.get(b, 0) for b in after) == {700}  # once each, not twice
    assert db.session.scalar(select(func.count()).select_from(ChainAlert)) > alerts_before
    assert alerts.open_counts().get(alerts.DEEP_ROLLBACK)
    _chain_equals_database()


def test_a_nonce_gap_is_filled_and_the_waiting_transaction_mined(app, node):
    from portal.chain import alerts, setup, signers
    from portal.chain.models import NOOP_PURPOSE, ChainSigner, ChainTx, Funding
    from portal.extensions import db

    project = _project()
    _deployed(project)
    drive(_all_final, "quiet")
    # Two nonces handed out whose transactions are lost (never stored, never sent).
    signer = signers.operator()
    db.session.execute(
        ChainSigner.__table__.update()
        .where(ChainSigner.id == signer.id)
        .values(next_nonce=ChainSigner.next_nonce + 2)
    )
    db.session.commit()
    funding = setup.start_funding(project, 300, "after a gap", None)
    db.session.commit()
    drive(
        lambda: db.session.get(Funding, funding.id).status == "confirmed" and _all_final(),
        "gap filled",
    )
    fills = db.session.scalars(select(ChainTx).where(ChainTx.purpose == NOOP_PURPOSE)).all()
    assert len(fills) == 2 and all(f.status == "confirmed" for f in fills)
    assert alerts.open_counts().get(alerts.NONCE_GAP)
    _chain_equals_database()

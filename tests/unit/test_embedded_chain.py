"""The embedded chain keeps its state across a restart by replaying its journal."""

from __future__ import annotations

import pytest

from portal.chain import addresses, contracts, embedded, health, setup
from portal.extensions import db
from tests.support import chain


@pytest.fixture
def journaled(app):
    """This test's app on a journaled embedded chain under its instance folder."""
    app.config["CHAIN_EPHEMERAL"] = False
    app.extensions.pop("portal_web3", None)
    yield app
    embedded.forget(app.config["INSTANCE_DIR"])


def _restart(app) -> None:
    embedded.forget(app.config["INSTANCE_DIR"])
    app.extensions.pop("portal_web3", None)


def test_state_survives_a_restart(journaled, worker, make_project, make_beneficiary):
    project = make_project(status="active")
    people = [make_beneficiary(project=project) for _ in range(3)]
    db.session.commit()
    pc = chain.deploy(worker, project)
    chain.fund(worker, project, "50")
    chain.allocate(worker, project, amount="5", beneficiary_ids=[p.id for p in people])

    _restart(journaled)

    fresh = embedded.get(journaled.config["INSTANCE_DIR"])
    assert fresh.replayed >= 5  # gas top-up, token, contract, mint, allocation
    contract = contracts.at(pc.contract_kind, pc.contract_address)
    assert contract.functions.outstanding().call() == 1500
    assert contract.functions.entitlementOf(addresses.pseudonym(people[0].id)).call() == 500
    assert health.problems(journaled) == []

    # And it keeps working: the next disbursement goes on top of the replayed state.
    chain.allocate(worker, project, amount="1", beneficiary_ids=[people[0].id])
    assert contract.functions.entitlementOf(addresses.pseudonym(people[0].id)).call() == 600


def test_a_lost_journal_is_reported_at_start(journaled, worker, make_project):
    project = make_project(status="active")
    db.session.commit()
    pc = chain.deploy(worker, project)
    _restart(journaled)
    journal = embedded.get(journaled.config["INSTANCE_DIR"]).journal
    _restart(journaled)
    journal.unlink()

    found = health.problems(journaled)
    assert len(found) == 2
    assert pc.token_address in found[0] and "has no code" in found[0]
    assert setup.state(project.id).status == "deployed"


def test_an_edited_journal_refuses_to_replay(journaled, worker, make_project):
    project = make_project(status="active")
    db.session.commit()
    chain.deploy(worker, project)
    _restart(journaled)
    journal = embedded.get(journaled.config["INSTANCE_DIR"]).journal
    _restart(journaled)
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join([lines[0], lines[2], lines[1]]) + "\n")  # out of order
    with pytest.raises(embedded.JournalError, match="cannot be replayed"):
        embedded.get(journaled.config["INSTANCE_DIR"])


def test_a_replayed_journal_is_not_a_rollback(journaled, worker, make_project, make_beneficiary):
    """The replay puts the same transactions into new blocks (new hashes): the chain watch must
    move them, not roll them back and raise a deep-rollback alert at every `make run`."""
    from sqlalchemy import func, select

    from portal.chain import alerts, watch
    from portal.chain.models import ChainTx

    project = make_project(status="active")
    people = [make_beneficiary(project=project) for _ in range(2)]
    db.session.commit()
    chain.deploy(worker, project)
    chain.fund(worker, project, "50")
    chain.allocate(worker, project, amount="5", beneficiary_ids=[p.id for p in people])
    before = {tx.id: tx.block_hash for tx in db.session.scalars(select(ChainTx))}

    _restart(journaled)
    report = watch.run()

    assert report["deep_rolled_back"] == 0
    assert alerts.open_counts() == {}
    assert db.session.scalar(select(func.sum(ChainTx.rollbacks))) in (0, None)
    moved = {tx.id: tx.block_hash for tx in db.session.scalars(select(ChainTx))}
    assert moved != before  # the replay's blocks, anchored again
    assert all(tx.status == "confirmed" for tx in db.session.scalars(select(ChainTx)))

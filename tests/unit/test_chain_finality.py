"""Finality, rollbacks, fee ceiling and nonce allocation on the in-process EVM."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.chain import alerts, client, contracts, finality, reconcile, setup, signers, txmanager
from portal.chain.models import ChainAlert, ChainEffect, ChainTx, Funding
from portal.disbursements.models import Disbursement, Entitlement
from portal.extensions import db
from tests.support import chain


@pytest.fixture
def funded(app, worker, make_project, make_beneficiary):
    project = make_project(status="active")
    people = [make_beneficiary(project=project) for _ in range(4)]
    db.session.commit()
    chain.deploy(worker, project)
    chain.fund(worker, project, "100.00")
    return project, people


@pytest.mark.usefixtures("funded")
def test_the_embedded_chain_is_final_when_mined():
    assert finality.confirmations(client.web3().eth.chain_id) == 1
    txs = db.session.scalars(select(ChainTx)).all()
    assert txs and all(tx.final_at is not None and tx.block_hash for tx in txs)
    assert reconcile.check().ok


def test_confirmations_are_set_per_chain_and_by_setting(app):
    assert finality.confirmations(1) == 12
    assert finality.confirmations(31337) == 1
    assert finality.confirmations(999_999) == finality.UNKNOWN_CHAIN
    app.config["CHAIN_CONFIRMATIONS"] = "4"
    assert finality.confirmations(1) == 4 and finality.confirmations(31337) == 4


def test_a_rolled_back_allocation_is_debited_once_then_credited_once_when_mined_again(
    funded, worker
):
    project, people = funded
    d = chain.allocate(worker, project, amount="5", beneficiary_ids=[p.id for p in people])
    tx = db.session.get(ChainTx, d.batches[0].tx_id)

    assert txmanager.roll_back(tx, "test") is True
    assert txmanager.roll_back(tx, "test") is False  # a second finder changes nothing
    db.session.commit()
    assert set(db.session.scalars(select(Entitlement.allocated))) == {0}
    assert db.session.get(Disbursement, d.id).status == "running"
    assert tx.status == "pending" and tx.rollbacks == 1 and tx.block_hash is None

    # The in-process chain still has it: the follow-up finds it mined and credits once.
    txmanager.follow_up(tx, wait_seconds=0)
    db.session.commit()
    assert set(db.session.scalars(select(Entitlement.allocated))) == {500}
    assert db.session.get(Disbursement, d.id).status == "completed"
    assert reconcile.check().ok


def test_a_final_transaction_rolled_back_raises_a_deep_rollback_alert(funded):
    project, _ = funded
    funding = db.session.scalar(select(Funding))
    tx = db.session.get(ChainTx, funding.tx_id)
    assert tx.final_at is not None
    txmanager.roll_back(tx, "test")
    db.session.commit()
    assert setup.state(project.id).funded == 0
    assert db.session.get(Funding, funding.id).status == "pending"
    assert not db.session.scalar(select(func.count()).select_from(ChainEffect))
    assert alerts.open_counts() == {alerts.DEEP_ROLLBACK: 1}
    assert not reconcile.check().ok  # the chain has it, the database does not (yet)
    txmanager.follow_up(tx, wait_seconds=0)
    db.session.commit()
    assert setup.state(project.id).funded == 10_000
    assert reconcile.check().ok


def test_fee_bumps_stop_at_the_ceiling_and_alert_once(funded, app):
    project, _ = funded
    pc = setup.state(project.id)
    # An operator call (the operator cannot mint on a version-2 project; revoke of nobody is
    # accepted and changes nothing).
    data = contracts.encode(contracts.ENTITLEMENTS, "revoke", pc.token_address)
    tx = txmanager.submit(
        purpose="revoke", to=pc.contract_address, data=data, project_id=project.id
    )
    assert tx.broadcasts == []  # signed at the commit
    db.session.commit()
    first = tx.broadcasts[-1]
    app.config["CHAIN_MAX_FEE_PER_GAS_GWEI"] = first.max_fee_per_gas // 10**9 + 1
    bumped = txmanager.replace_with_higher_fee(tx)  # room for one bump, to the ceiling
    ceiling = finality.max_fee_ceiling()
    if bumped is not None:
        assert bumped.max_fee_per_gas <= ceiling
    assert txmanager.replace_with_higher_fee(tx) is None
    assert txmanager.replace_with_higher_fee(tx) is None
    assert tx.fee_capped_at is not None and "Fee ceiling reached" in tx.error
    assert all(v.max_fee_per_gas <= max(ceiling, first.max_fee_per_gas) for v in tx.broadcasts)
    assert db.session.scalar(select(func.count()).select_from(ChainAlert)) == 1
    assert txmanager.serialize(tx)["fee_ceiling_reached"] is True


def test_no_rpc_while_the_nonce_row_is_locked(funded, monkeypatch):
    project, _ = funded
    pc = setup.state(project.id)
    provider = client.web3().provider
    locked = {"now": False, "calls": []}
    allocate = txmanager._allocate_nonce

    def allocate_and_mark(signer):
        locked["now"] = True
        return allocate(signer)

    real = provider.make_request
    send = txmanager._send_raw

    def watching(method, params):
        if locked["now"]:
            locked["calls"].append(method)
        return real(method, params)

    def committed_then_sent(raw):
        locked["now"] = False  # the commit released the row: the broadcast comes after
        return send(raw)

    monkeypatch.setattr(txmanager, "_allocate_nonce", allocate_and_mark)
    monkeypatch.setattr(txmanager, "_send_raw", committed_then_sent)
    monkeypatch.setattr(provider, "make_request", watching)
    data = contracts.encode(contracts.ENTITLEMENTS, "revoke", pc.token_address)
    before = signers.operator().next_nonce
    tx = txmanager.submit(
        purpose="revoke", to=pc.contract_address, data=data, project_id=project.id
    )
    assert tx.nonce is None and not locked["now"]  # the nonce is taken at the commit
    db.session.commit()
    assert tx.nonce == before
    assert locked["calls"] == []  # nothing asked of the node between the lock and the commit
    db.session.commit()


def test_the_transactions_page_shows_open_alerts_and_unfinal_transactions(
    funded, client, login, make_user
):
    project, _ = funded
    tx = db.session.scalar(select(ChainTx).where(ChainTx.purpose == "fund"))
    txmanager.roll_back(tx, "test")
    db.session.commit()
    login(client, make_user("admin"))
    page = client.get(f"/projects/{project.id}/transactions")
    assert page.status_code == 200
    assert b"Chain alerts" in page.data and b"deep rollback" in page.data
    assert b"rolled back 1" in page.data

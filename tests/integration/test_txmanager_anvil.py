"""The transaction manager against a node that does not mine until told to (anvil --no-mining).

A transaction that stays unmined is replaced with a higher fee under the same nonce, and the
follow-up finds the receipt of whichever version was mined; a transaction that passed its gas
estimate but reverts when mined is recorded with the contract's reason; nonces come from the
database in order, whatever the node's pending pool holds.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from web3.exceptions import TransactionNotFound

from portal.chain import client, contracts, signers, txmanager
from portal.chain.models import ChainTx
from portal.extensions import db
from tests.support.anvil import DEV_KEY, Anvil

pytestmark = pytest.mark.integration


@pytest.fixture
def lazy_node(tmp_path):
    node = Anvil("--no-mining", log_dir=tmp_path)
    node.start()
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()


@pytest.fixture
def chain_app(app_factory, database_factory, lazy_node):
    app = app_factory(
        database_factory("portal_it_tx"),
        WEB3_PROVIDER_URI=lazy_node.url,
        CHAIN_FAUCET_KEY=DEV_KEY,
        CHAIN_STUCK_SECONDS=0,
        CHAIN_RECEIPT_WAIT_SECONDS=0,
    )
    with app.app_context():
        yield app
        db.session.remove()


def _mine(node):
    node.rpc("evm_mine")


def test_stuck_transaction_is_replaced_with_a_higher_fee(chain_app, lazy_node, monkeypatch):
    # The faucet top-up waits for its receipt: mine it as soon as it is in the pool.
    signer = signers.operator()
    db.session.commit()
    monkeypatch.setattr(signers, "ensure_gas", lambda s: None)
    lazy_node.rpc("anvil_setBalance", signer.address, hex(10**20))

    data = contracts.deploy_data(contracts.PROJECT_TOKEN, "Stuck", "STK", 2, signer.address)
    tx = txmanager.submit(purpose="deploy.token", to=None, data=data)
    assert tx.status == "pending" and tx.nonce is None  # the nonce is given at the commit
    assert lazy_node.rpc("eth_getTransactionCount", signer.address, "pending") == "0x0"
    db.session.commit()  # the unit of work ends: now it is signed and broadcast
    assert tx.nonce == 0
    assert lazy_node.rpc("eth_getTransactionCount", signer.address, "pending") == "0x1"
    first = tx.broadcasts[0]

    assert txmanager.follow_up(tx, wait_seconds=0) is not None  # not mined: replaced
    db.session.commit()  # the replacement goes out after its unit of work
    db.session.refresh(tx)
    assert len(tx.broadcasts) == 2
    second = tx.broadcasts[1]
    assert second.max_priority_fee_per_gas > first.max_priority_fee_per_gas
    assert second.max_fee_per_gas >= first.max_fee_per_gas * 5 // 4
    assert second.tx_hash != first.tx_hash and tx.tx_hash == second.tx_hash

    _mine(lazy_node)
    assert txmanager.follow_up(tx, wait_seconds=1) is None
    db.session.commit()
    tx = db.session.get(ChainTx, tx.id)
    assert tx.status == "confirmed" and tx.tx_hash == second.tx_hash
    assert tx.contract_address and contracts.has_code(tx.contract_address)


def test_nonces_come_from_the_database_in_order(chain_app, lazy_node, monkeypatch):
    signer = signers.operator()
    db.session.commit()
    monkeypatch.setattr(signers, "ensure_gas", lambda s: None)
    lazy_node.rpc("anvil_setBalance", signer.address, hex(10**20))
    data = contracts.deploy_data(contracts.PROJECT_TOKEN, "N", "NN", 0, signer.address)
    sent = [txmanager.submit(purpose="deploy.token", to=None, data=data) for _ in range(3)]
    db.session.commit()
    assert [t.nonce for t in sent] == [0, 1, 2]  # in the order they were submitted
    _mine(lazy_node)
    for t in sent:
        assert txmanager.follow_up(t, wait_seconds=1) is None
    db.session.commit()
    statuses = db.session.scalars(select(ChainTx.status).order_by(ChainTx.nonce)).all()
    assert statuses == ["confirmed"] * 3


def test_revert_when_mined_is_recorded_with_its_reason(chain_app, lazy_node, monkeypatch):
    signer = signers.operator()
    db.session.commit()
    monkeypatch.setattr(signers, "ensure_gas", lambda s: None)
    lazy_node.rpc("anvil_setBalance", signer.address, hex(10**20))
    lazy_node.rpc("evm_setAutomine", True)
    token = txmanager.submit(
        purpose="deploy.token",
        to=None,
        data=contracts.deploy_data(contracts.PROJECT_TOKEN, "R", "RR", 0, signer.address),
    )
    db.session.commit()
    assert txmanager.follow_up(token, wait_seconds=5) is None
    db.session.commit()
    token = db.session.get(ChainTx, token.id)
    lazy_node.rpc("evm_setAutomine", False)

    # Two mints pass their estimates one by one; in between, the minter role is renounced in
    # the same block, so the second mint reverts when it is mined.
    mint = txmanager.submit(
        purpose="fund",
        to=token.contract_address,
        data=contracts.encode(contracts.PROJECT_TOKEN, "mint", signer.address, 5),
    )
    role = (
        contracts.at(contracts.PROJECT_TOKEN, token.contract_address).functions.MINTER_ROLE().call()
    )
    renounce = txmanager.submit(
        purpose="renounce",
        to=token.contract_address,
        data=contracts.encode(contracts.PROJECT_TOKEN, "renounceRole", role, signer.address),
    )
    late_mint = txmanager.submit(
        purpose="fund",
        to=token.contract_address,
        data=contracts.encode(contracts.PROJECT_TOKEN, "mint", signer.address, 7),
    )
    db.session.commit()  # all three go out now, in nonce order
    _mine(lazy_node)
    for t in (mint, renounce, late_mint):
        assert txmanager.follow_up(t, wait_seconds=2) is None
    db.session.commit()
    late = db.session.get(ChainTx, late_mint.id)
    assert db.session.get(ChainTx, mint.id).status == "confirmed"
    assert late.status == "reverted"
    assert "AccessControlUnauthorizedAccount" in late.error


# --- a used nonce: this call mined a moment ago, or another transaction of the key -----------

OTHER = "0x000000000000000000000000000000000000dEaD"


def _ready_signer(lazy_node, monkeypatch):
    signer = signers.operator()
    db.session.commit()
    monkeypatch.setattr(signers, "ensure_gas", lambda s: None)
    lazy_node.rpc("anvil_setBalance", signer.address, hex(10**20))
    return signer


def _plain(signer) -> ChainTx:
    """A 0-value transfer of the operator's, signed and sent at the commit."""
    return txmanager.submit(
        purpose="test.transfer", to=OTHER, data="0x", gas_limit=21_000, signer=signer
    )


def _drive(node, tx: ChainTx, looks: int = 12) -> ChainTx:
    """Follow ``tx`` up (mining a block before each look) until it is final."""
    for _ in range(looks):
        _mine(node)
        if txmanager.follow_up(tx, wait_seconds=0) is None:
            db.session.commit()
            break
        db.session.commit()
    return db.session.get(ChainTx, tx.id)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(hidden=st.integers(min_value=1, max_value=6), confirmations=st.integers(1, 3))
def test_a_nonce_counted_before_its_receipt_is_served_is_not_signed_again(
    chain_app, lazy_node, monkeypatch, hidden, confirmations
):
    """A node can count a just-mined nonce before it serves the receipt (anvil under load, a
    load-balanced provider a block behind): the call was mined, and signing it again at a new
    nonce would send it twice (a payment reverted as already done, and recorded as failed)."""
    chain_app.config["CHAIN_CONFIRMATIONS"] = str(confirmations)
    signer = _ready_signer(lazy_node, monkeypatch)
    tx = _plain(signer)
    db.session.commit()
    nonce = tx.nonce
    _mine(lazy_node)
    assert int(lazy_node.rpc("eth_getTransactionCount", signer.address, "latest"), 16) > nonce

    eth = client.web3().eth
    served = eth.get_transaction_receipt
    misses = {"left": hidden}

    def lagging(tx_hash):
        if misses["left"] > 0:
            misses["left"] -= 1
            raise TransactionNotFound(f"{tx_hash} not served yet")
        return served(tx_hash)

    with monkeypatch.context() as lag:
        lag.setattr(eth, "get_transaction_receipt", lagging)
        for _ in range(hidden + 1):  # no block in between: the head stays where it was
            if txmanager.follow_up(tx, wait_seconds=0) is None:
                break
            db.session.commit()
        db.session.commit()
    tx = _drive(lazy_node, db.session.get(ChainTx, tx.id))
    assert tx.status == "confirmed" and tx.final_at is not None
    assert tx.nonce == nonce and len(tx.broadcasts) == 1  # never signed again


@pytest.mark.parametrize("confirmations", [1, 3])
def test_a_nonce_another_transaction_took_is_signed_again_once_a_block_shows_it(
    chain_app, lazy_node, monkeypatch, confirmations
):
    chain_app.config["CHAIN_CONFIRMATIONS"] = str(confirmations)
    signer = _ready_signer(lazy_node, monkeypatch)
    with monkeypatch.context() as offline:
        offline.setattr(txmanager, "_send_raw", lambda raw: None)  # its broadcast is lost
        tx = _plain(signer)
        db.session.commit()
    nonce = tx.nonce
    # The same key, used elsewhere, takes that nonce.
    w3 = client.web3()
    intruder = signers.account(signer).sign_transaction(
        {
            "nonce": nonce,
            "to": OTHER,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9,
            "chainId": w3.eth.chain_id,
            "type": 2,
        }
    )
    w3.eth.send_raw_transaction(intruder.raw_transaction)
    _mine(lazy_node)
    # The block that used the nonce holds another transaction: known at once, settled or not.
    assert txmanager.follow_up(tx, wait_seconds=0) == 0.0  # the same call, a fresh nonce
    db.session.commit()
    tx = db.session.get(ChainTx, tx.id)
    assert tx.nonce == nonce + 1 and len(tx.broadcasts) == 2
    assert "used by a transaction signed elsewhere" in tx.error
    tx = _drive(lazy_node, tx)
    assert tx.status == "confirmed" and tx.final_at is not None
    assert w3.eth.get_transaction_count(signer.address, "latest") == nonce + 2

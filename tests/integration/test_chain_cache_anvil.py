"""What the chain client keeps of its node's answers, against two real nodes of different chains.

Each client keeps its own answers: a process talking to two chains never signs for one with the
other's chain id. A fee quote is kept for ``CHAIN_FEE_QUOTE_SECONDS`` and then asked again, so a
base fee that moved is seen; a balance likewise for ``CHAIN_BALANCE_CHECK_SECONDS``.
"""

from __future__ import annotations

import time

import pytest
from flask import Flask
from web3 import Web3

from portal.chain import client
from tests.support.anvil import DEV_KEY, Anvil

pytestmark = pytest.mark.integration


@pytest.fixture
def nodes(tmp_path):
    started = []
    try:
        for chain_id in (31337, 4242):
            node = Anvil("--chain-id", str(chain_id), log_dir=tmp_path)
            node.start()
            started.append(node)
        for node in started:
            node.wait_ready()
        yield started
    finally:
        for node in started:
            node.stop()


@pytest.fixture
def context():
    app = Flask(__name__)
    app.config.update(CHAIN_FEE_QUOTE_SECONDS=1, CHAIN_BALANCE_CHECK_SECONDS=1)
    with app.app_context():
        yield app


def test_each_client_keeps_its_own_chain_id(nodes, context):
    first, second = (Web3(Web3.HTTPProvider(node.url)) for node in nodes)
    for _ in range(3):  # asked, then kept: interleaved, neither takes the other's
        assert client.chain_id(first) == 31337
        assert client.chain_id(second) == 4242
    # The node behind an address becomes another chain: a client made anew asks it; the old
    # client keeps its answer until told (then it asks again).
    nodes[0].rpc("anvil_setChainId", 777)
    assert client.chain_id(Web3(Web3.HTTPProvider(nodes[0].url))) == 777
    assert client.chain_id(first) == 31337
    client.forget(first)
    assert client.chain_id(first) == 777
    assert client.chain_id(second) == 4242


def test_a_fee_quote_is_kept_then_asked_again(nodes, context):
    node = nodes[0]
    w3 = Web3(Web3.HTTPProvider(node.url))
    quote = client.fee_quote(w3)
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    assert quote.max_fee == 2 * base + quote.priority
    node.rpc("anvil_setNextBlockBaseFeePerGas", hex(base * 10))
    node.rpc("evm_mine")
    higher = w3.eth.get_block("latest")["baseFeePerGas"]
    assert higher > base
    assert client.fee_quote(w3) == quote  # within its second: kept
    time.sleep(1.1)
    fresh = client.fee_quote(w3)
    assert fresh.max_fee == 2 * higher + fresh.priority


def test_a_balance_is_kept_then_asked_again(nodes, context):
    node = nodes[0]
    w3 = Web3(Web3.HTTPProvider(node.url))
    me = w3.eth.account.from_key(DEV_KEY).address
    before = client.balance(me, w3)
    node.rpc("anvil_setBalance", me, hex(before + 10**18))
    assert client.balance(me, w3) == before  # kept
    assert client.balance(me, w3, max_age=0) == before + 10**18  # a caller who must know
    node.rpc("anvil_setBalance", me, hex(5))
    time.sleep(1.1)
    assert client.balance(me, w3) == 5
    node.rpc("anvil_setBalance", me, hex(7))
    client.forget_balance(me, w3)  # after a top-up, say
    assert client.balance(me, w3) == 7

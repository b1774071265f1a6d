"""The store of node answers (portal/chain/cache.py) and the signing accounts kept per process."""

from __future__ import annotations

import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from portal.chain import cache, signers
from portal.chain.models import ChainSigner


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting(values):
    asked = []

    def compute():
        asked.append(1)
        return values[len(asked) - 1]

    return compute, asked


@given(
    max_age=st.integers(min_value=1, max_value=3600),
    waited=st.integers(min_value=0, max_value=7200),
)
def test_a_value_is_kept_exactly_as_long_as_asked(max_age, waited):
    clock = Clock()
    store = cache.ChainCache(clock)
    compute, asked = counting(["old", "new"])
    assert store.get("fees", max_age, compute) == "old"
    clock.now += waited
    expected = "old" if waited < max_age else "new"
    assert store.get("fees", max_age, compute) == expected
    assert len(asked) == (1 if expected == "old" else 2)


def test_kept_for_ever_without_a_max_age_until_forgotten():
    clock = Clock()
    store = cache.ChainCache(clock)
    compute, asked = counting([31337, 4242])
    assert store.get("chain_id", None, compute) == 31337
    clock.now += 10**9
    assert store.get("chain_id", None, compute) == 31337
    store.forget("chain_id")
    assert store.get("chain_id", None, compute) == 4242
    assert len(asked) == 2


def test_a_failed_answer_is_not_kept():
    store = cache.ChainCache(Clock())

    def down():
        raise ConnectionError("node down")

    with pytest.raises(ConnectionError):
        store.get("fees", 60, down)
    assert store.peek("fees") is None
    assert store.get("fees", 60, lambda: (1, 3)) == (1, 3)


def test_each_client_has_its_own_store():
    class Client:  # any object a store can be keyed on, as a Web3 client is
        pass

    first, second = Client(), Client()
    cache.of(first).put("chain_id", 31337)
    assert cache.of(first).peek("chain_id") == 31337
    assert cache.of(second).peek("chain_id") is None
    assert cache.of(first) is cache.of(first)


def test_a_signing_account_is_kept_per_signer_and_address():
    keys = [Account.create() for _ in range(2)]
    # Two databases (two test apps, two deployments) may both have a signer with id 1.
    rows = [
        ChainSigner(id=1, name="operator", address=k.address, private_key=k.key.to_0x_hex())
        for k in keys
    ]
    assert [signers.account(r).address for r in rows] == [k.address for k in keys]
    assert signers.account(rows[0]) is signers.account(rows[0])


def test_a_key_that_is_not_its_address_is_never_used():
    key, other = Account.create(), Account.create()
    row = ChainSigner(
        id=99, name="operator", address=other.address, private_key=key.key.to_0x_hex()
    )
    with pytest.raises(ValueError, match="not its address"):
        signers.account(row)

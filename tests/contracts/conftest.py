"""Contract tests on an in-process chain (eth-tester on py-evm, Prague), one fresh chain a test.

The contracts are deployed from the committed artifacts in ``portal/chain/artifacts/``, the same
bytecode the portal deploys; ``test_artifacts.py`` proves those match ``contracts/src``.

Reverts are checked by their exact custom-error data (selector and arguments), not only by the
fact that something reverted: a test that expects ``InsufficientFunding(1200, 1000)`` fails if
the contract reverts for any other reason or with other figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import eth_abi
import pytest
from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.logs import DISCARD

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "portal" / "chain" / "artifacts"

# Enough for every single call in these tests; given explicitly so that a transaction expected
# to revert is mined (and seen to fail) instead of being refused at gas estimation.
GAS = 8_000_000


@cache
def artifact(name: str) -> dict:
    return json.loads((ARTIFACTS / f"{name}.json").read_text(encoding="utf-8"))


def role(name: str) -> bytes:
    """The id of an AccessControl role, as the contracts compute it."""
    return keccak(text=name)


DEFAULT_ADMIN_ROLE = b"\x00" * 32
MINTER_ROLE = role("MINTER_ROLE")
OPERATOR_ROLE = role("OPERATOR_ROLE")


def pseudonym(i: int) -> str:
    """A beneficiary address as the portal makes them: derived, and nobody holds its key."""
    return Web3.to_checksum_address(keccak(text=f"beneficiary-{i}")[-20:])


def batch_id(label: str) -> bytes:
    return keccak(text=f"batch:{label}")


def redemption_id(label: str) -> bytes:
    return keccak(text=f"redemption:{label}")


def encode_error(contract: Contract, name: str, *args) -> bytes:
    """Revert data of custom error ``name(args)``, with the parameter types from the ABI."""
    entries = [e for e in contract.abi if e["type"] == "error" and e["name"] == name]
    assert len(entries) == 1, f"{name} is not an error of this contract's ABI"
    types = [i["type"] for i in entries[0]["inputs"]]
    return keccak(text=f"{name}({','.join(types)})")[:4] + eth_abi.encode(types, list(args))


def error_name(contracts: list[Contract], data: bytes) -> str:
    """Names the error behind revert data, for readable failures."""
    for contract in contracts:
        for e in contract.abi:
            if e["type"] == "error":
                sig = f"{e['name']}({','.join(i['type'] for i in e['inputs'])})"
                if keccak(text=sig)[:4] == data[:4]:
                    return sig
    return "unknown error"


@dataclass
class Actors:
    admin: str
    operator: str
    outsider: str
    vendor: str
    treasury: str


class Chain:
    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        accounts = w3.eth.accounts
        self.actors = Actors(*accounts[:5])

    def deploy(self, name: str, *args, sender: str | None = None) -> Contract:
        spec = artifact(name)
        factory = self.w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
        tx_hash = factory.constructor(*args).transact(
            {"from": sender or self.actors.admin, "gas": GAS}
        )
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, f"deploying {name} failed"
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=spec["abi"])

    def token(self, decimals: int = 2, name: str = "Voucher NPR", symbol: str = "VNPR"):
        return self.deploy("ProjectToken", name, symbol, decimals, self.actors.admin)

    def transact(self, fn, sender: str):
        tx_hash = fn.transact({"from": sender, "gas": GAS})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, "transaction reverted"
        return receipt

    def revert_data(self, fn, sender: str) -> bytes:
        """What ``fn`` reverts with when ``sender`` calls it (fails the test if it does not)."""
        tx = fn.build_transaction({"from": sender, "gas": GAS})
        return self._revert_of({"from": sender, "to": tx["to"], "data": tx["data"], "gas": GAS})

    def deploy_revert_data(self, name: str, *args) -> bytes:
        """What deploying ``name(args)`` reverts with (fails the test if it does not)."""
        spec = artifact(name)
        factory = self.w3.eth.contract(abi=spec["abi"], bytecode=spec["bytecode"])
        sender = self.actors.admin
        tx = factory.constructor(*args).build_transaction({"from": sender, "gas": GAS})
        return self._revert_of({"from": sender, "data": tx["data"], "gas": GAS})

    def _revert_of(self, tx: dict) -> bytes:
        tester = self.w3.provider.ethereum_tester
        # Asked through eth-tester's estimate_gas, not call: its call turns the revert data into
        # str(), while estimate_gas raises with py-evm's Revert, whose argument is the raw bytes
        # (web3's provider, in turn, would flatten either into a message).
        try:
            tester.estimate_gas(tx)
        except TransactionFailed as exc:
            raw = exc.args[0]
            data = raw.args[0] if isinstance(raw, Exception) else raw
            assert isinstance(data, bytes), f"no revert data in {exc!r}"
            return data
        pytest.fail("it did not revert")

    def assert_reverts(self, fn, sender: str, where: Contract, error: str, *args) -> None:
        """``fn`` from ``sender`` reverts with ``error(args)`` (declared in ``where``'s ABI),
        both as a call and as a mined transaction (which then has status 0)."""
        expected = encode_error(where, error, *args)
        data = self.revert_data(fn, sender)
        if data != expected:
            got = error_name([where], data)
            pytest.fail(f"reverted with {got} 0x{data.hex()}, expected {error}{args}")
        tx_hash = fn.transact({"from": sender, "gas": GAS})
        assert self.w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 0

    @staticmethod
    def events(contract: Contract, event: str, receipt) -> list[dict]:
        """The ``event`` logs of ``receipt`` emitted by ``contract``, decoded, as plain dicts."""
        decoded = getattr(contract.events, event)().process_receipt(receipt, errors=DISCARD)
        return [dict(e["args"]) for e in decoded if e["address"] == contract.address]


@pytest.fixture
def chain() -> Chain:
    return Chain(Web3(EthereumTesterProvider()))


@pytest.fixture
def actors(chain) -> Actors:
    return chain.actors

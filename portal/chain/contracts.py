"""Encoding calls to the portal's contracts and reading their state."""

from __future__ import annotations

from functools import cache

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from flask import current_app
from web3 import Web3

from portal.chain import artifacts, client

PROJECT_TOKEN = "ProjectToken"  # noqa: S105 - a contract name, not a secret
ENTITLEMENTS = "Entitlements"
CASH_TRANSFER = "CashTransfer"
# Version 2 (see ProjectChain.version): vendor balances, settle, caps, pause, allow-list.
PROJECT_TOKEN_V2 = "ProjectTokenV2"  # noqa: S105 - a contract name, not a secret
ENTITLEMENTS_V2 = "EntitlementsV2"
# EntitlementsV2.Action, the index of each capped value move.
CAP_ACTIONS = ("allocate", "redeem", "settle")


def contract_name(pc) -> str:
    """The artifact of a project's contract: ``contract_kind`` in the version it was deployed."""
    if pc.contract_kind == ENTITLEMENTS and (pc.version or 1) >= 2:
        return ENTITLEMENTS_V2
    return pc.contract_kind


def token_name(pc) -> str:
    return PROJECT_TOKEN_V2 if (pc.version or 1) >= 2 else PROJECT_TOKEN


def of_project(pc):
    """The project's contract bound with the ABI of the version it runs."""
    return at(contract_name(pc), pc.contract_address)


@cache
def _codec(name: str):
    # A provider-less contract object is enough to encode calls and decode results.
    return Web3().eth.contract(abi=artifacts.abi(name))


def deploy_data(name: str, *args) -> str:
    """Creation bytecode followed by the ABI-encoded constructor arguments."""
    constructor = next((e for e in artifacts.abi(name) if e["type"] == "constructor"), None)
    types = [i["type"] for i in constructor["inputs"]] if constructor else []
    return artifacts.bytecode(name) + abi_encode(types, list(args)).hex()


def encode(name: str, function: str, *args) -> str:
    return _codec(name).encode_abi(function, args=list(args))


@cache
def _outputs(name: str, function: str) -> tuple[str, ...]:
    item = next(
        e for e in artifacts.abi(name) if e.get("type") == "function" and e["name"] == function
    )
    return tuple(o["type"] for o in item["outputs"])


def read(name: str, address: str, function: str, *args):
    """One view call, encoded and decoded with the ABI read once per process: the same answer
    as ``at(...).functions.x(...).call()`` without building a call object each time (the
    redemption's transfer job asks one on every payment)."""
    raw = client.web3().eth.call(
        {"to": Web3.to_checksum_address(address), "data": encode(name, function, *args)}
    )
    values = abi_decode(list(_outputs(name, function)), bytes(raw))
    return values[0] if len(values) == 1 else values


def at(name: str, address: str):
    """A bound contract for reads (``.functions.x().call()``), made once per chain client:
    building one parses the whole ABI (about 4 ms, on every redemption's transfer job). A
    contract object only describes calls; each ``.functions.x(...)`` makes its own."""
    w3 = client.web3()
    made = current_app.extensions.setdefault("portal_contracts", {})
    key = (name, address.lower())
    found = made.get(key)
    if found is None or found.w3 is not w3:  # first use, or the client was replaced
        found = w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifacts.abi(name))
        made[key] = found
    return found


@cache
def _errors() -> dict[str, tuple[str, list[str], list[str]]]:
    """Custom errors of every portal contract by 4-byte selector (OpenZeppelin's included)."""
    found = {}
    for name in (PROJECT_TOKEN, ENTITLEMENTS, CASH_TRANSFER, ENTITLEMENTS_V2, PROJECT_TOKEN_V2):
        for item in artifacts.abi(name):
            if item["type"] != "error":
                continue
            types = [i["type"] for i in item["inputs"]]
            selector = Web3.keccak(text=f"{item['name']}({','.join(types)})")[:4].hex()
            found[selector] = (item["name"], [i["name"] for i in item["inputs"]], types)
    return found


def describe_revert(data: str | bytes | None) -> str | None:
    """``InsufficientFunding(needed=4000, available=0)`` from revert data, if it is ours."""
    if not data:
        return None
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else data
    )
    known = _errors().get(raw[:4].hex())
    if known is None:
        return None
    name, names, types = known
    try:
        values = abi_decode(types, raw[4:])
    except Exception:
        return name
    shown = ", ".join(
        f"{n}={v.hex() if isinstance(v, bytes) else v}" for n, v in zip(names, values, strict=True)
    )
    return f"{name}({shown})"


def has_code(address: str) -> bool:
    return len(client.web3().eth.get_code(Web3.to_checksum_address(address))) > 0

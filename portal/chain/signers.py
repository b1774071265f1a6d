"""The portal's signing accounts: keys encrypted at rest, gas topped up outside production."""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.chain import client
from portal.chain.models import ChainSigner
from portal.extensions import db

log = logging.getLogger(__name__)

OPERATOR = "operator"
TREASURY = "treasury"
# The treasury's row keeps its address and nonce counter, never its key (see treasury_key).
NO_KEY = "-"
TREASURY_KEY_FILE = "chain-treasury.key"
_faucet_lock = threading.Lock()
# Signing accounts by (signer id, address). Deriving an account from its key is an elliptic-curve
# multiplication (about 8 ms in pure Python); signing happens at the commit, under the nonce row
# lock that every transaction of the signer waits for, so ``txmanager.submit`` derives it before
# (once per process). The address is derived from the key, so the same address means the same key.
_accounts: dict[tuple[int, str], LocalAccount] = {}


def operator() -> ChainSigner:
    """The signer holding the operator role on every project contract (created on first use).

    Production may bring its own funded key in CHAIN_OPERATOR_KEY; otherwise a fresh key is
    generated and kept encrypted in the database.
    """
    found = db.session.scalar(select(ChainSigner).where(ChainSigner.name == OPERATOR))
    if found is not None:
        return found
    key = current_app.config.get("CHAIN_OPERATOR_KEY") or Account.create().key.to_0x_hex()
    account = Account.from_key(key)
    try:
        with db.session.begin_nested():
            signer = ChainSigner(name=OPERATOR, address=account.address, private_key=key)
            db.session.add(signer)
        return signer
    except IntegrityError:  # another worker created it a moment ago
        return db.session.scalar(select(ChainSigner).where(ChainSigner.name == OPERATOR))


def treasury_key() -> str | None:
    """The treasury signer's private key, or None in multisig mode.

    Kept apart from the operator's key on purpose: a leak of the database (where the operator
    key lives, encrypted) must not give minting power. Production gives CHAIN_TREASURY_KEY in
    the environment; development without it generates one into its own file under instance/.
    """
    key = current_app.config.get("CHAIN_TREASURY_KEY")
    if key:
        return key
    if current_app.config.get("CHAIN_TREASURY_ADDRESS"):
        return None
    path = Path(current_app.config["INSTANCE_DIR"]) / TREASURY_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process wrote it a moment ago
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(Account.create().key.to_0x_hex())
            log.warning("generated a development treasury key in %s", path)
    return path.read_text().strip()


def treasury_address() -> str:
    """The address given as admin and minter to version-2 contracts."""
    key = treasury_key()
    if key is None:
        return to_checksum_address(current_app.config["CHAIN_TREASURY_ADDRESS"])
    return _address_of(key)


@lru_cache(maxsize=4)
def _address_of(key: str) -> str:
    return Account.from_key(key).address


def multisig() -> bool:
    """Whether mints are signed outside the portal (CHAIN_TREASURY_ADDRESS without a key)."""
    return treasury_key() is None


def treasury() -> ChainSigner:
    """The treasury signer's row (address and nonce counter; the key stays outside the
    database). Only for a treasury whose key the portal has: see ``multisig``."""
    address = treasury_address()
    found = db.session.scalar(select(ChainSigner).where(ChainSigner.name == TREASURY))
    if found is not None and found.address == address:
        return found
    try:
        with db.session.begin_nested():
            if found is not None:
                # A new treasury key (rotated in the environment): a fresh nonce counter.
                found.address = address
                found.next_nonce = 0
                return found
            signer = ChainSigner(name=TREASURY, address=address, private_key=NO_KEY)
            db.session.add(signer)
        return signer
    except IntegrityError:
        return db.session.scalar(select(ChainSigner).where(ChainSigner.name == TREASURY))


def native_signing() -> bool:
    """Whether signatures come from the native secp256k1 library (coincurve, ~1 ms) rather
    than eth-keys' pure Python (~25 ms of CPU, holding the interpreter)."""
    from eth_keys.backends import get_backend

    return type(get_backend()).__name__ == "CoinCurveECCBackend"


def account(signer: ChainSigner) -> LocalAccount:
    key = (signer.id, signer.address)
    found = _accounts.get(key)
    if found is None:
        secret = treasury_key() if signer.name == TREASURY else signer.private_key
        if not secret or secret == NO_KEY:
            raise ValueError(f"signer {signer.name}: no key at hand")
        found = Account.from_key(secret)
        if found.address != signer.address:  # a row edited by hand: never sign with it
            raise ValueError(f"signer {signer.name}: its key is not its address's")
        _accounts[key] = found
    return found


def ensure_gas(signer: ChainSigner) -> None:
    """Top the signer up from the faucet (embedded chain, or CHAIN_FAUCET_KEY on a dev node).

    In production there is no faucet: an operator without gas money fails its transactions
    with a clear "insufficient funds" that the Transactions page shows. The balance is asked
    at most every ``CHAIN_BALANCE_CHECK_SECONDS`` (``client.balance``), not per transaction;
    a top-up is ten times the minimum, far more than that many seconds of transactions cost.
    """
    w3 = client.web3()
    minimum = current_app.config["CHAIN_MIN_GAS_BALANCE_WEI"]
    if client.balance(signer.address, w3) >= minimum:
        return
    key = client.faucet_key()
    if not key:
        return
    faucet = Account.from_key(key)
    with _faucet_lock:
        if client.balance(signer.address, w3, max_age=0) >= minimum:
            return
        block = w3.eth.get_block("latest")
        tip = 10**9
        tx = {
            "to": signer.address,
            "value": minimum * 10,
            "gas": 21_000,
            "maxPriorityFeePerGas": tip,
            "maxFeePerGas": 2 * block["baseFeePerGas"] + tip,
            "nonce": w3.eth.get_transaction_count(faucet.address, "pending"),
            "chainId": client.chain_id(w3),
            "type": 2,
        }
        tx_hash = w3.eth.send_raw_transaction(faucet.sign_transaction(tx).raw_transaction)
        w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.05)
        client.forget_balance(signer.address, w3)
        log.info("gas top-up sent to signer %s", signer.name)

"""The portal's signing accounts: keys encrypted at rest, gas topped up outside production."""

from __future__ import annotations

import logging
import threading

from eth_account import Account
from eth_account.signers.local import LocalAccount
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.chain import client
from portal.chain.models import ChainSigner
from portal.extensions import db

log = logging.getLogger(__name__)

OPERATOR = "operator"
_faucet_lock = threading.Lock()
# Signing accounts by (signer id, address). Deriving an account from its key is an elliptic-curve
# multiplication (about 8 ms in pure Python) and happens under the nonce row lock that every
# transaction of the signer waits for; the address is derived from the key, so the same address
# means the same key.
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


def native_signing() -> bool:
    """Whether signatures come from the native secp256k1 library (coincurve, ~1 ms) rather
    than eth-keys' pure Python (~25 ms of CPU, holding the interpreter)."""
    from eth_keys.backends import get_backend

    return type(get_backend()).__name__ == "CoinCurveECCBackend"


def account(signer: ChainSigner) -> LocalAccount:
    key = (signer.id, signer.address)
    found = _accounts.get(key)
    if found is None:
        found = Account.from_key(signer.private_key)
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

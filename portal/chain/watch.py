"""The chain watch: run by every worker's sweeper (and ``flask chain-watch``), it catches what
follow-up jobs cannot see on their own.

- Included transactions not yet final whose follow-up was lost are re-checked.
- Final transactions are compared with the node by block height and hash (the stored block hash
  of each transaction is the checkpoint): a block the node no longer has, or has with another
  hash, is a rollback deeper than finality. It is reported loudly (an alert, the audit log, the
  log) and repaired: the transaction goes back to pending with its effects, and is sent again.
- Each signer's nonces: ``txmanager.repair_signer`` rolls back what the node's nonce says is
  gone, re-sends stored transactions the node no longer has, in nonce order, and fills a nonce
  nothing would use.
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import func, select
from web3.exceptions import TransactionNotFound

from portal.chain import client, txmanager
from portal.chain.models import CONFIRMED, INCLUDED_STATUSES, ChainSigner, ChainTx
from portal.extensions import db

log = logging.getLogger(__name__)

NEWEST_BLOCKS_CHECKED = 16  # distinct blocks always compared; all of the window if one differs
RECHECK_LIMIT = 200


def run() -> dict:
    """One pass; commits its own repairs (it runs outside any request or job)."""
    w3 = client.web3()
    report = {"rechecked": 0, "deep_rolled_back": 0, "resent": 0, "filled": 0, "rolled": 0}
    report["deep_rolled_back"] = _deep_rollbacks(w3)
    for signer in db.session.scalars(select(ChainSigner).order_by(ChainSigner.id)):
        repaired = txmanager.repair_signer(signer, w3)
        for key in ("resent", "filled", "rolled"):
            report[key] += repaired[key]
    db.session.commit()
    unfinal = db.session.scalars(
        select(ChainTx.id)
        .where(ChainTx.status.in_(INCLUDED_STATUSES), ChainTx.final_at.is_(None))
        .order_by(ChainTx.nonce)
        .limit(RECHECK_LIMIT)
    ).all()
    for tx_id in unfinal:
        tx = db.session.get(ChainTx, tx_id)
        if tx is not None and tx.status in INCLUDED_STATUSES and tx.final_at is None:
            txmanager.follow_up(tx, wait_seconds=0)
            db.session.commit()
            report["rechecked"] += 1
    return report


def _deep_rollbacks(w3) -> int:
    """Final transactions whose block the node no longer has: rolled back, counted."""
    window = db.session.scalar(select(func.max(ChainTx.block_number)))
    if window is None:
        return 0
    lowest = window - current_app.config["CHAIN_WATCH_BLOCKS"]
    final = (
        select(ChainTx)
        .where(
            ChainTx.status.in_(INCLUDED_STATUSES),
            ChainTx.final_at.is_not(None),
            ChainTx.block_number >= lowest,
        )
        .order_by(ChainTx.block_number.desc())
    )
    newest = db.session.scalars(
        select(func.distinct(ChainTx.block_number))
        .where(
            ChainTx.status.in_(INCLUDED_STATUSES),
            ChainTx.final_at.is_not(None),
            ChainTx.block_number >= lowest,
        )
        .order_by(ChainTx.block_number.desc())
        .limit(NEWEST_BLOCKS_CHECKED)
    ).all()
    latest = w3.eth.block_number
    hashes: dict[int, str | None] = {}
    if all(_same_block(w3, latest, hashes, number, None) for number in newest):
        return 0
    rolled = 0
    for tx in list(db.session.scalars(final)):
        if _same_block(w3, latest, hashes, tx.block_number, tx.block_hash):
            continue
        if _moved(w3, tx):
            continue
        if txmanager.roll_back(tx, "its block is no longer on the chain"):
            txmanager.ensure_follow_up(tx)
            rolled += 1
    return rolled


def _moved(w3, tx: ChainTx) -> bool:
    """Whether the transaction is still on the chain with the same outcome, only in another
    block: a reorg that took it again, or the embedded chain replaying its journal into new
    blocks at every `make run`. Its effects stand; its place is updated and its finality must
    be earned again (the follow-ups re-check it)."""
    try:
        receipt = w3.eth.get_transaction_receipt(tx.tx_hash)
    except TransactionNotFound:
        return False
    if receipt is None or receipt["status"] != (1 if tx.status == CONFIRMED else 0):
        return False
    tx.block_number = receipt["blockNumber"]
    tx.block_hash = _hash_of({"hash": receipt["blockHash"]})
    tx.final_at = None
    return True


def _same_block(w3, latest: int, hashes: dict, number: int, expected: str | None):
    """Whether the node's block ``number`` has the hash stored for it (``expected``; None: any
    final transaction stored in that block)."""
    if number not in hashes:
        hashes[number] = None if number > latest else _hash_of(w3.eth.get_block(number))
    found = hashes[number]
    if expected is not None:
        return found == expected
    stored = db.session.scalars(
        select(ChainTx.block_hash).where(
            ChainTx.block_number == number, ChainTx.final_at.is_not(None)
        )
    ).all()
    return all(found == value for value in stored)


def _hash_of(block) -> str | None:
    if block is None:
        return None
    value = block["hash"]
    return "0x" + bytes(value).hex() if isinstance(value, (bytes, bytearray)) else str(value)

"""Chain writes: nonce from the database, signed and stored in the caller's unit of work,
broadcast after it commits, then followed up.

``submit`` allocates the signer's next nonce under the signer row's lock (an ``UPDATE`` first, so
SQLite and PostgreSQL both serialise here; the lock is held until the caller commits, so two
callers never share a nonce), signs, stores the signed bytes and their hash and queues the
``chain.confirm`` follow-up, all in the caller's transaction. The broadcast happens after that
commit: work that rolls back never reaches the chain, and a crash after the commit leaves a stored
transaction that the follow-up sends again. Broadcasts of one process go out in nonce order under
a per-signer lock, which an in-process EVM insists on.

``follow_up`` (the ``chain.confirm`` job) looks for a receipt of any signed version; sends a
version the node has not accepted; replaces one stuck too long with a higher fee (same nonce); and
records the outcome, the revert reason included. Listeners of ``events.chain_tx_final`` move the
domain objects (batches, redemptions, deployments) in the same transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import event, update
from sqlalchemy.orm import Session
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from portal import events, realtime
from portal.chain import client, contracts, signers
from portal.chain.models import (
    CONFIRMED,
    FAILED,
    OPEN_STATUSES,
    PENDING,
    REVERTED,
    SENT,
    ChainSigner,
    ChainTx,
    ChainTxBroadcast,
)
from portal.extensions import db
from portal.jobs import dispatch
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

TX_UPDATED = "chain.tx"
_AFTER_COMMIT = "chain_broadcasts"  # session.info key: (signer id, nonce, raw) to send
_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


class Reverted(Exception):
    """The call would revert (found while estimating gas): nothing was signed or sent."""

    def __init__(self, reason: str, tx: ChainTx):
        super().__init__(reason)
        self.reason = reason
        self.tx = tx


def _signer_lock(signer_id: int) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(signer_id, threading.Lock())


def reason_of(exc: BaseException) -> str:
    """A revert reason people can read: custom errors by name where the ABI knows them."""
    data = getattr(exc, "data", None)
    named = contracts.describe_revert(data) if isinstance(data, (str, bytes)) else None
    if named:
        return named
    message = getattr(exc, "message", None) or str(exc)
    return message.replace("execution reverted: ", "").strip()[:500] or "reverted"


def submit(
    *,
    purpose: str,
    to: str | None,
    data: str,
    project_id: int | None = None,
    ref: tuple[str, int] | None = None,
    value: int = 0,
    gas_limit: int | None = None,
) -> ChainTx:
    """Prepare a transaction from the operator in the caller's unit of work (see module doc).

    A call that would revert raises ``Reverted`` with its refused record flushed: the record is
    kept only if the caller commits (a job handler returns, or raises ``RefusedJob``). A caller
    that knows a sufficient ``gas_limit`` saves the estimate (an RPC); a revert is then found
    on chain by the follow-up instead.
    """
    w3 = client.web3()
    signer = signers.operator()
    signers.ensure_gas(signer)
    ref_type, ref_id = ref or (None, None)
    # What every record of this call shares, whether it is refused or signed.
    intent = {
        "signer_id": signer.id,
        "project_id": project_id,
        "chain_id": client.chain_id(w3),
        "purpose": purpose,
        "ref_type": ref_type,
        "ref_id": ref_id,
        "to_address": to,
        "data": data,
        "value": value,
    }
    call = {"from": signer.address, "data": data, "value": value}
    if to:
        call["to"] = to
    try:
        estimate = w3.eth.estimate_gas(call) if gas_limit is None else None
    except ContractLogicError as exc:
        tx = ChainTx(
            **intent,
            nonce=None,
            gas_limit=0,
            status=REVERTED,
            error=f"Refused before sending, the call would revert: {reason_of(exc)}",
        )
        db.session.add(tx)
        db.session.flush()
        _announce(tx)
        raise Reverted(reason_of(exc), tx) from exc

    nonce = _allocate_nonce(signer, w3)
    if gas_limit is None:
        gas_limit = estimate * 6 // 5 + 20_000
    tx = ChainTx(**intent, nonce=nonce, gas_limit=gas_limit, status=PENDING)
    db.session.add(tx)
    db.session.flush()
    priority, max_fee = _fees(w3)
    _sign(tx, signer, priority, max_fee)
    _announce(tx)
    dispatch.enqueue("chain.confirm", {"tx_id": tx.id}, project_id=project_id)
    return tx


def _broadcast_after_commit(version: ChainTxBroadcast, tx: ChainTx) -> None:
    pending = db.session.info.setdefault(_AFTER_COMMIT, [])
    pending.append((tx.signer_id, tx.nonce, version.raw))


# insert=True: first among the after-commit listeners, so the transaction reaches the node before
# the job messages go out (portal.jobs.dispatch) and its follow-up finds it there.
@event.listens_for(Session, "after_commit", insert=True)
def _send_committed(sess) -> None:
    if sess.in_nested_transaction():  # a SAVEPOINT released: nothing is committed yet
        return
    queued = sess.info.pop(_AFTER_COMMIT, None)
    if not queued:
        return
    for signer_id, _nonce, raw in sorted(queued, key=lambda item: (item[0], item[1])):
        with _signer_lock(signer_id):
            _send_raw(raw)


def _send_raw(raw: str) -> None:
    try:
        client.web3().eth.send_raw_transaction(raw)
    except Exception as exc:  # the follow-up job sends it again and records why
        log.info("broadcast after commit not accepted (%s); the follow-up retries", exc)


def _known_to_node(w3, version: ChainTxBroadcast) -> bool:
    try:
        return w3.eth.get_transaction(version.tx_hash) is not None
    except TransactionNotFound:
        return False


@event.listens_for(Session, "after_rollback")
def _forget_uncommitted(sess) -> None:
    # Even a savepoint's rollback drops them all: a transaction signed inside it is gone, and
    # one signed before it is sent by its follow-up job after the commit.
    sess.info.pop(_AFTER_COMMIT, None)


def _allocate_nonce(signer: ChainSigner, w3) -> int:
    # The UPDATE takes the row's write lock before anything is read, on both databases.
    db.session.execute(
        update(ChainSigner)
        .where(ChainSigner.id == signer.id)
        .values(next_nonce=ChainSigner.next_nonce)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(signer)
    on_chain = w3.eth.get_transaction_count(signer.address, "pending")
    nonce = max(signer.next_nonce, on_chain)
    signer.next_nonce = nonce + 1
    return nonce


def _fees(w3) -> tuple[int, int]:
    # A quote a couple of seconds old (client.fee_quote): two RPCs saved per transaction.
    return client.fee_quote(w3)


def _sign(tx: ChainTx, signer: ChainSigner, priority: int, max_fee: int) -> ChainTxBroadcast:
    fields = {
        "nonce": tx.nonce,
        "gas": tx.gas_limit,
        "value": tx.value,
        "data": tx.data,
        "maxPriorityFeePerGas": priority,
        "maxFeePerGas": max_fee,
        "chainId": tx.chain_id,
        "type": 2,
    }
    if tx.to_address:
        fields["to"] = tx.to_address
    signed = signers.account(signer).sign_transaction(fields)
    version = ChainTxBroadcast(
        tx=tx,
        tx_hash=signed.hash.to_0x_hex(),
        raw=signed.raw_transaction.to_0x_hex(),
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=priority,
    )
    db.session.add(version)
    tx.tx_hash = version.tx_hash
    _broadcast_after_commit(version, tx)
    return version


def _broadcast(tx: ChainTx, version: ChainTxBroadcast) -> bool:
    w3 = client.web3()
    try:
        w3.eth.send_raw_transaction(version.raw)
    except (Web3RPCError, ValueError) as exc:
        text = str(exc)
        if "already known" in text.lower():
            return _mark_sent(tx, version)
        # Kept PENDING: the follow-up re-sends it; the page shows why it has not gone yet.
        version.send_error = text[:500]
        tx.error = f"Not accepted by the node yet: {text[:300]}"
        _announce(tx)
        return False
    except Exception as exc:  # node unreachable: same as above, the follow-up retries
        version.send_error = f"{type(exc).__name__}: {exc}"[:500]
        tx.error = "The chain node could not be reached; the transaction will be re-sent."
        _announce(tx)
        return False
    return _mark_sent(tx, version)


def _mark_sent(tx: ChainTx, version: ChainTxBroadcast) -> bool:
    version.sent_at = utcnow()
    version.send_error = None
    if tx.status == PENDING:
        tx.status = SENT
        tx.sent_at = version.sent_at
        tx.error = None
    _announce(tx)
    return True


def _find_receipt(w3, tx: ChainTx):
    for version in reversed(tx.broadcasts):
        try:
            receipt = w3.eth.get_transaction_receipt(version.tx_hash)
        except TransactionNotFound:
            continue
        if receipt is not None:
            return version, receipt
    return None, None


def follow_up(tx: ChainTx, wait_seconds: float | None = None) -> float | None:
    """Drive one transaction towards a final state; seconds until the next check, or None."""
    if tx.status not in OPEN_STATUSES:
        return None
    w3 = client.web3()
    config = current_app.config
    wait = config["CHAIN_RECEIPT_WAIT_SECONDS"] if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    version, receipt = _find_receipt(w3, tx)
    if receipt is None and tx.status == PENDING:
        if w3.eth.get_transaction_count(tx.signer.address, "latest") > tx.nonce:
            version, receipt = _find_receipt(w3, tx)  # mined between the two questions?
            if receipt is None:
                _final_failure(tx, "Its nonce was used by another transaction; never mined.")
                return None
        elif _known_to_node(w3, tx.broadcasts[-1]):
            _mark_sent(tx, tx.broadcasts[-1])  # broadcast after its maker committed
        else:
            _broadcast(tx, tx.broadcasts[-1])  # never sent (its maker died), or dropped
    pause = 0.02
    while receipt is None and tx.status != PENDING and time.monotonic() < deadline:
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)
        version, receipt = _find_receipt(w3, tx)
    if receipt is not None:
        _finalize(tx, version, receipt, w3)
        return None
    if tx.status == PENDING:
        return config["CHAIN_RESEND_SECONDS"]
    latest = tx.broadcasts[-1]
    stuck_for = utcnow() - (latest.sent_at or latest.created_at)
    if stuck_for > timedelta(seconds=config["CHAIN_STUCK_SECONDS"]):
        replace_with_higher_fee(tx)
    return config["CHAIN_POLL_SECONDS"]


def replace_with_higher_fee(tx: ChainTx) -> ChainTxBroadcast:
    """Same nonce, same call, fees raised by a quarter (nodes want at least a tenth more).

    Stored in the caller's transaction and broadcast after it commits, like the first version.
    """
    w3 = client.web3()
    latest = tx.broadcasts[-1]
    _, floor_fee = _fees(w3)
    priority = latest.max_priority_fee_per_gas * 5 // 4 + 1
    max_fee = max(latest.max_fee_per_gas * 5 // 4 + 1, floor_fee + priority)
    version = _sign(tx, tx.signer, priority, max_fee)
    db.session.flush()
    log.info("transaction %s replaced with a higher fee", tx.id)
    return version


def _claim_final(tx: ChainTx) -> bool:
    """Take the right to finalise: two follow-ups of one transaction must not both run hooks.

    The UPDATE waits for a concurrent one to commit and then finds the row no longer open.
    """
    taken = db.session.execute(
        update(ChainTx)
        .where(ChainTx.id == tx.id, ChainTx.status.in_(OPEN_STATUSES))
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(tx)
    return taken == 1 and tx.status in OPEN_STATUSES


def ensure_follow_up(tx: ChainTx) -> None:
    """A job that will drive this open transaction to its end (a crash may have lost the first;
    a second one is harmless, see ``_claim_final``)."""
    if tx.status in OPEN_STATUSES:
        dispatch.enqueue("chain.confirm", {"tx_id": tx.id}, project_id=tx.project_id)


def _finalize(tx: ChainTx, version: ChainTxBroadcast, receipt, w3) -> None:
    if not _claim_final(tx):
        return
    tx.tx_hash = version.tx_hash
    tx.block_number = receipt["blockNumber"]
    tx.gas_used = receipt["gasUsed"]
    tx.effective_gas_price = receipt.get("effectiveGasPrice")
    tx.confirmed_at = utcnow()
    if receipt.get("contractAddress"):
        tx.contract_address = receipt["contractAddress"]
    if receipt["status"] == 1:
        tx.status = CONFIRMED
        tx.error = None
    else:
        tx.status = REVERTED
        tx.error = f"Reverted on chain: {_revert_reason(w3, tx, receipt)}"
    events.chain_tx_final.send(tx, receipt=receipt)
    _announce(tx)


def _final_failure(tx: ChainTx, message: str) -> None:
    if not _claim_final(tx):
        return
    tx.status = FAILED
    tx.error = message
    events.chain_tx_final.send(tx, receipt=None)
    _announce(tx)


def _revert_reason(w3, tx: ChainTx, receipt) -> str:
    """Replays the call to learn why it reverted: nodes do not keep the reason.

    The state after the block comes first: it includes the transactions mined before this one in
    the same block, which are often the cause; the state before the block is the fallback.
    """
    call = {"from": tx.signer.address, "data": tx.data, "value": tx.value, "gas": tx.gas_limit}
    if tx.to_address:
        call["to"] = tx.to_address
    for block in (receipt["blockNumber"], receipt["blockNumber"] - 1):
        try:
            w3.eth.call(call, block)
        except ContractLogicError as exc:
            return reason_of(exc)
        except Exception:
            return "no reason available from the node"
    if receipt["gasUsed"] >= tx.gas_limit:
        return "out of gas"
    return "no reason given"


def serialize(tx: ChainTx) -> dict:
    return {
        "id": tx.id,
        "project_id": tx.project_id,
        "purpose": tx.purpose,
        "status": tx.status,
        "nonce": tx.nonce,
        "tx_hash": tx.tx_hash,
        "block_number": tx.block_number,
        "gas_used": tx.gas_used,
        "error": tx.error,
        "versions": len(tx.broadcasts),
        "ref_type": tx.ref_type,
        "ref_id": tx.ref_id,
        "created_at": tx.created_at.isoformat() if tx.created_at else None,
        "confirmed_at": tx.confirmed_at.isoformat() if tx.confirmed_at else None,
    }


def transactions_room(project_id: int) -> str:
    return f"transactions:{project_id}"


def _announce(tx: ChainTx) -> None:
    if tx.project_id is None:
        return
    realtime.emit_after_commit(TX_UPDATED, serialize(tx), [transactions_room(tx.project_id)])

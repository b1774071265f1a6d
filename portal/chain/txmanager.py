"""Chain writes: nonce from the database, signed and stored in the caller's unit of work,
broadcast after it commits, then followed up.

``submit`` estimates gas and quotes fees, stores the intended transaction and queues its
``chain.confirm`` follow-up in the caller's transaction; the nonce and the signature come last,
at that transaction's root commit (``_sign_at_commit``, a ``before_root_commit`` hook): the
transaction's own rows are flushed, then the signer's next nonce is taken from the database
alone (one ``UPDATE ... RETURNING`` on the signer's row), the call signed and the signed bytes
and hash stored, then the audit chain's head is locked and the commit goes through. The signer's
row, which every transaction of that signer needs, is therefore held for the commit only, not
for the caller's work: two jobs signing at once wait for each other's commit, never for each
other's checks, RPCs or signing. Two callers never share a nonce, and a transaction that rolls
back (even at its commit) takes its nonce back with it, so there is no gap. The database's nonce
is reconciled with the node by ``repair_signer`` (once per process on first use, then by the
chain watch), not per transaction. The broadcast happens after that commit: work that rolls
back never reaches the chain, and a crash after the commit leaves a stored transaction that the
follow-up sends again. Broadcasts of one process go out in nonce order under a per-signer lock,
which an in-process EVM insists on. Before the commit a submitted transaction has no nonce and
no hash yet: read them after it.

``follow_up`` (the ``chain.confirm`` job) looks for a receipt of any signed version; sends a
version the node has not accepted; replaces one stuck too long with a higher fee (same nonce); and
records the outcome, the revert reason included. Listeners of ``events.chain_tx_final`` move the
domain objects (batches, redemptions, deployments) in the same transaction: a success as soon as
it is included, a revert once final. An included transaction is re-checked until it is
``finality.confirmations`` blocks deep; if its receipt vanishes or moves to another block it goes
back to pending (``events.chain_tx_undone`` puts its effects back), and ``repair_signer`` re-sends
the stored signed transactions in nonce order (a node does not put dropped transactions back in
its pool), filling a nonce nothing will use with a 0-value self transfer.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from flask import current_app, has_request_context
from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from web3.exceptions import BlockNotFound, ContractLogicError, TransactionNotFound, Web3RPCError

from portal import events, realtime
from portal.chain import alerts, client, contracts, finality, signers
from portal.chain.models import (
    CONFIRMED,
    FAILED,
    INCLUDED_STATUSES,
    NOOP_PURPOSE,
    OPEN_STATUSES,
    PENDING,
    REVERTED,
    SENT,
    ChainSigner,
    ChainTx,
    ChainTxBroadcast,
)
from portal.db_session import before_root_commit
from portal.extensions import db
from portal.jobs import dispatch
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

TX_UPDATED = "chain.tx"
_AFTER_COMMIT = "chain_broadcasts"  # session.info key: (signer id, nonce, raw) to send
_AT_COMMIT = "chain_to_sign"  # session.info key: (tx, priority, max fee) to sign at the commit
# The signer's row is locked at commit before the audit head (portal.db_session).
NONCE_LOCK_ORDER = 10
_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()
_synced: set[tuple[str, int]] = set()  # (node, signer id) whose nonce this process reconciled


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
    signer: ChainSigner | None = None,
    follow_up_here: bool = False,
) -> ChainTx:
    """Prepare a transaction from the operator (or ``signer``, e.g. the treasury for a mint)
    in the caller's unit of work; its nonce and signature are given at the commit (see module
    doc).

    A call that would revert raises ``Reverted`` with its refused record flushed: the record is
    kept only if the caller commits (a job handler returns, or raises ``RefusedJob``). A caller
    that knows a sufficient ``gas_limit`` saves the estimate (an RPC); a revert is then found
    on chain by the follow-up instead. ``follow_up_here``: a worker thread that submits runs
    the follow-up itself right after its commit (``dispatch.enqueue(here=True)``), for a caller
    someone is waiting on.
    """
    w3 = client.web3()
    signer = signer or signers.operator()
    signers.account(signer)  # a signer without its key fails here, not in the commit
    signers.ensure_gas(signer)
    _sync_once(signer, w3)
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

    priority, max_fee = _fees(w3)
    if gas_limit is None:
        gas_limit = estimate * 6 // 5 + 20_000
    tx = ChainTx(**intent, nonce=None, gas_limit=gas_limit, status=PENDING)
    db.session.add(tx)
    db.session.flush()
    db.session.info.setdefault(_AT_COMMIT, []).append((tx, priority, max_fee))
    dispatch.enqueue("chain.confirm", {"tx_id": tx.id}, project_id=project_id, here=follow_up_here)
    return tx


@before_root_commit(lock_order=NONCE_LOCK_ORDER)
def _sign_at_commit(sess: Session) -> None:
    """Give the transactions submitted in this unit of work their nonces, in the order they
    were submitted, and sign them: the signer's row is locked from here to the commit only."""
    queued = sess.info.pop(_AT_COMMIT, None)
    # One submitted inside a savepoint that rolled back is gone with it.
    live = [item for item in queued or () if inspect(item[0]).persistent]
    if not live:
        return
    # The transaction's own rows first, so the signer's row is among the last locks it takes.
    sess.flush()
    # Signers' rows in one order for every transaction (by id); each signer's transactions in
    # the order they were submitted (a stable sort).
    for tx, priority, max_fee in sorted(live, key=lambda item: item[0].signer_id):
        tx.nonce = _allocate_nonce(tx.signer)
        _sign(tx, tx.signer, priority, max_fee)
        _announce(tx)
    sess.flush()


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
    # A web request (a vendor waiting) does not wait out a hung node: the follow-up sends it.
    waits = client.request_timeout() if has_request_context() else None
    with client.rpc_timeout(waits):
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
    # one signed before it is sent by its follow-up job after the commit. (Those submitted in
    # this unit of work are signed at its commit, if they are still there then.)
    sess.info.pop(_AFTER_COMMIT, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_unsigned(sess, transaction) -> None:
    # The whole unit of work ended without reaching its commit (closed, or rolled back): the
    # transactions it submitted went with it.
    if transaction.parent is None and not transaction.nested:
        sess.info.pop(_AT_COMMIT, None)


def _allocate_nonce(signer: ChainSigner) -> int:
    """The next nonce, from the database alone: one statement that takes the row's write lock
    (held until the caller commits) and hands out the value it found. ``submit``'s
    transactions take it at their commit; a re-sign at a fresh nonce (``_renonce``) and a
    filler (``_fill``) take it where they are."""
    taken = db.session.execute(
        update(ChainSigner)
        .where(ChainSigner.id == signer.id)
        .values(next_nonce=ChainSigner.next_nonce + 1)
        .returning(ChainSigner.next_nonce)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    set_committed_value(signer, "next_nonce", taken)
    return taken - 1


def sync_next_nonce(signer: ChainSigner, w3) -> int:
    """Never hand out a nonce the node has seen used (a key used elsewhere, a restored
    database): raise the database's next nonce to the node's pending count. The RPC comes
    first; the UPDATE locks the row only when it changes it."""
    on_chain = w3.eth.get_transaction_count(signer.address, "pending")
    db.session.execute(
        update(ChainSigner)
        .where(ChainSigner.id == signer.id, ChainSigner.next_nonce < on_chain)
        .values(next_nonce=on_chain)
        .execution_options(synchronize_session=False)
    )
    return on_chain


def _renonce(tx: ChainTx, w3) -> ChainTxBroadcast:
    """The node's nonce passed this unmined transaction's (a transaction signed with the same
    key elsewhere took it): sign the same call again at the next nonce. Safe, since every
    version signed before shares the spent nonce and none of them can be mined any more."""
    priority, max_fee = _fees(w3)
    sync_next_nonce(tx.signer, w3)
    spent = tx.nonce
    tx.nonce = _allocate_nonce(tx.signer)
    tx.error = f"Nonce {spent} was used by a transaction signed elsewhere; signed again."
    log.warning("transaction %s: nonce %s used elsewhere, now %s", tx.id, spent, tx.nonce)
    version = _sign(tx, tx.signer, priority, max_fee)
    db.session.flush()
    _announce(tx)
    return version


def _sync_once(signer: ChainSigner, w3) -> None:
    key = (str(current_app.config.get("WEB3_PROVIDER_URI") or "embedded"), signer.id)
    if key in _synced:
        return
    sync_next_nonce(signer, w3)
    _synced.add(key)


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
        if "insufficient funds" in text.lower():
            # The remembered balance is wrong: a reorg can drop the gas top-up itself (sent by
            # the faucet, not recorded here). Ask again and top up before the next re-send.
            client.forget_balance(tx.signer.address, w3)
            signers.ensure_gas(tx.signer)
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
    """The receipt of this call's mined version: one that succeeded before one that reverted.
    Versions at different nonces (``_renonce``) can both be mined; when the first did the work,
    the second reverts on a contract that refuses doing it twice, and the call is done."""
    reverted = None
    for version in reversed(tx.broadcasts):
        receipt = _receipt_of(w3, version.tx_hash)
        if receipt is None:
            continue
        if receipt["status"] == 1:
            return version, receipt
        reverted = reverted or (version, receipt)
    return reverted or (None, None)


def _spent_by_another(w3, tx: ChainTx) -> bool:
    """Whether another transaction of this key took ``tx``'s nonce, so none of ``tx``'s versions
    can be mined. Not decided from the "latest" count alone: a node can count a just-mined nonce
    before it serves that block's receipts (anvil under load; a load-balanced provider whose
    backends are a block apart), and re-signing then would send the call twice. Used in a block
    ``confirmations`` below the head: taken, unless a receipt of ours is found after that count.
    Used since: the block that used it says whose transaction it was (found by halving the
    range on the count); a block the node does not serve yet decides nothing."""
    address = tx.signer.address
    head = w3.eth.block_number
    low = max(head - finality.confirmations(tx.chain_id), 0)
    if w3.eth.get_transaction_count(address, low) > tx.nonce:
        return _find_receipt(w3, tx)[1] is None
    high = head
    if w3.eth.get_transaction_count(address, high) <= tx.nonce:
        return False  # the head moved between the questions: look again
    while high - low > 1:  # the count at ``low`` is at most the nonce, at ``high`` above it
        middle = (low + high) // 2
        if w3.eth.get_transaction_count(address, middle) > tx.nonce:
            high = middle
        else:
            low = middle
    try:
        block = w3.eth.get_block(high, full_transactions=True)
    except BlockNotFound:
        return False
    ours = {version.tx_hash.lower() for version in tx.broadcasts}
    for found in block["transactions"]:
        if found["from"].lower() == address.lower() and found["nonce"] == tx.nonce:
            return _hex(found["hash"]).lower() not in ours
    return False


def follow_up(tx: ChainTx, wait_seconds: float | None = None) -> float | None:
    """Drive one transaction towards a final state; seconds until the next check, or None."""
    config = current_app.config
    wait = config["CHAIN_RECEIPT_WAIT_SECONDS"] if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    if tx.status in INCLUDED_STATUSES and tx.final_at is None:
        return _recheck(tx, client.web3(), deadline)
    if tx.status not in OPEN_STATUSES:
        return None
    w3 = client.web3()
    version, receipt = _find_receipt(w3, tx)
    if receipt is None and tx.status == PENDING:
        if w3.eth.get_transaction_count(tx.signer.address, "latest") > tx.nonce:
            # Its nonce is used: most likely by this very call, mined a moment ago.
            version, receipt = _wait_for_receipt(w3, tx, deadline, look_now=True)
            if receipt is None and _spent_by_another(w3, tx):
                # None of its versions can ever be mined: the same call, at a fresh nonce.
                _renonce(tx, w3)
                return 0.0  # look again as soon as the new version is out (after the commit)
            if receipt is None:
                return 1.0  # a block from now the receipt is served, or the nonce is settled
        elif _known_to_node(w3, tx.broadcasts[-1]):
            _mark_sent(tx, tx.broadcasts[-1])  # broadcast after its maker committed
        else:
            _broadcast(tx, tx.broadcasts[-1])  # never sent (its maker died), or dropped
    if receipt is None and tx.status != PENDING:
        version, receipt = _wait_for_receipt(w3, tx, deadline)
    if receipt is not None:
        _include(tx, version, receipt, w3)
        if tx.status in INCLUDED_STATUSES and tx.final_at is None:
            return _recheck(tx, w3, deadline)
        return None
    if tx.status == PENDING:
        return config["CHAIN_RESEND_SECONDS"]
    latest = tx.broadcasts[-1]
    stuck_for = utcnow() - (latest.sent_at or latest.created_at)
    if stuck_for > timedelta(seconds=config["CHAIN_STUCK_SECONDS"]):
        replace_with_higher_fee(tx)
    return config["CHAIN_POLL_SECONDS"]


def _wait_for_receipt(w3, tx: ChainTx, deadline: float, look_now: bool = False):
    """Look for a receipt until ``deadline`` (time.monotonic()), at growing intervals; at once
    as well with ``look_now``."""
    version, receipt = _find_receipt(w3, tx) if look_now else (None, None)
    pause = 0.02
    while receipt is None and time.monotonic() < deadline:
        time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
        pause = min(pause * 1.5, 0.5)
        version, receipt = _find_receipt(w3, tx)
    return version, receipt


def replace_with_higher_fee(tx: ChainTx) -> ChainTxBroadcast | None:
    """Same nonce, same call, fees raised by a quarter (nodes want at least a tenth more), up to
    ``CHAIN_MAX_FEE_PER_GAS_GWEI``. None when the ceiling leaves no room for a bump a node would
    accept: the transaction is flagged "fee ceiling reached" and staff are alerted (once).

    Stored in the caller's transaction and broadcast after it commits, like the first version.
    """
    w3 = client.web3()
    latest = tx.broadcasts[-1]
    _, floor_fee = _fees(w3)
    ceiling = finality.max_fee_ceiling()
    priority = latest.max_priority_fee_per_gas * 5 // 4 + 1
    max_fee = min(max(latest.max_fee_per_gas * 5 // 4 + 1, floor_fee + priority), ceiling)
    priority = min(priority, max_fee)
    accepted_bump = latest.max_fee_per_gas * 11 // 10 + 1
    if max_fee < accepted_bump or priority < latest.max_priority_fee_per_gas * 11 // 10 + 1:
        _fee_capped(tx, latest.max_fee_per_gas, ceiling)
        return None
    version = _sign(tx, tx.signer, priority, max_fee)
    db.session.flush()
    log.info("transaction %s replaced with a higher fee", tx.id)
    return version


def _fee_capped(tx: ChainTx, fee: int, ceiling: int) -> None:
    if not _write(
        tx,
        update(ChainTx)
        .where(ChainTx.id == tx.id, ChainTx.fee_capped_at.is_(None))
        .values(fee_capped_at=utcnow()),
    ):
        return
    tx.error = (
        f"Fee ceiling reached: not mined at {fee / 1e9:.2f} gwei, and the ceiling "
        f"(CHAIN_MAX_FEE_PER_GAS_GWEI = {ceiling // 10**9}) allows no higher bump."
    )
    alerts.raise_alert(
        alerts.FEE_CEILING, f"Transaction {tx.id} ({tx.purpose}) is stuck: {tx.error}", tx=tx
    )
    _announce(tx)


_TX_COLUMNS = tuple(attr.key for attr in inspect(ChainTx).column_attrs)


def _write(tx: ChainTx, statement) -> bool:
    """A conditional UPDATE of ``tx``'s row; whether it matched. Either way ``tx`` holds the
    row as it now stands: the UPDATE returns what it wrote (one round trip), and a row that did
    not match is read again. Its versions (``broadcasts``) stay loaded: a refresh of the whole
    object would read them again on the next look at the transaction."""
    row = db.session.execute(
        statement.returning(*(getattr(ChainTx, key) for key in _TX_COLUMNS)).execution_options(
            synchronize_session=False
        )
    ).one_or_none()
    if row is None:
        db.session.refresh(tx, attribute_names=_TX_COLUMNS)
        return False
    for key, value in zip(_TX_COLUMNS, row, strict=True):
        set_committed_value(tx, key, value)
    return True


def _claim_final(tx: ChainTx) -> bool:
    """Take the right to finalise: two follow-ups of one transaction must not both run hooks.

    The UPDATE waits for a concurrent one to commit and then finds the row no longer open.
    """
    taken = _write(
        tx,
        update(ChainTx)
        .where(ChainTx.id == tx.id, ChainTx.status.in_(OPEN_STATUSES))
        .values(updated_at=utcnow()),
    )
    return taken and tx.status in OPEN_STATUSES


def ensure_follow_up(tx: ChainTx) -> None:
    """A job that will drive this open transaction to its end (a crash may have lost the first;
    a second one is harmless, see ``_claim_final``)."""
    if tx.status in OPEN_STATUSES:
        dispatch.enqueue("chain.confirm", {"tx_id": tx.id}, project_id=tx.project_id)


def _include(tx: ChainTx, version: ChainTxBroadcast, receipt, w3) -> None:
    """Record the receipt. A success takes effect now (the vendor sees "confirmed" at once) and is
    undone if the block is dropped; a revert takes effect once final, since the same call sent
    again after a reorg may succeed."""
    if not _claim_final(tx):
        return
    tx.tx_hash = version.tx_hash
    tx.block_number = receipt["blockNumber"]
    tx.block_hash = _hex(receipt["blockHash"])
    tx.gas_used = receipt["gasUsed"]
    tx.effective_gas_price = receipt.get("effectiveGasPrice")
    tx.confirmed_at = utcnow()
    tx.final_at = None
    if receipt.get("contractAddress"):
        tx.contract_address = receipt["contractAddress"]
    if receipt["status"] == 1:
        tx.status = CONFIRMED
        tx.error = None
        events.chain_tx_final.send(tx, receipt=receipt)
    else:
        tx.status = REVERTED
        tx.error = f"Reverted on chain: {_revert_reason(w3, tx, receipt)}"
    db.session.flush()
    _announce(tx)


def _recheck(tx: ChainTx, w3, deadline: float) -> float | None:
    """Follow an included transaction until it is deep enough to be final, within ``deadline``;
    seconds until the next look, or None once final."""
    need = finality.confirmations(tx.chain_id)
    pause = 0.1
    while True:
        receipt = _receipt_of(w3, tx.tx_hash)
        if receipt is None or _hex(receipt["blockHash"]) != tx.block_hash:
            roll_back(tx, "its receipt is gone from the chain" if receipt is None else "reorg")
            if receipt is not None and tx.status == PENDING:
                version = next(v for v in tx.broadcasts if v.tx_hash == tx.tx_hash)
                _include(tx, version, receipt, w3)  # mined again, in another block
            else:
                repair_signer(tx.signer, w3)
            if tx.status in INCLUDED_STATUSES and tx.final_at is None:
                continue
            return current_app.config["CHAIN_RESEND_SECONDS"] if tx.final_at is None else None
        if finality.depth(w3.eth.block_number, receipt["blockNumber"]) >= need:
            _make_final(tx)
            return None
        if time.monotonic() >= deadline:
            return current_app.config["CHAIN_POLL_SECONDS"]
        time.sleep(pause)
        pause = min(pause * 1.5, 1.0)


def _make_final(tx: ChainTx) -> None:
    if not _write(
        tx,
        update(ChainTx)
        .where(
            ChainTx.id == tx.id,
            ChainTx.status == tx.status,
            ChainTx.block_hash == tx.block_hash,
            ChainTx.final_at.is_(None),
        )
        .values(final_at=utcnow()),
    ):
        return
    if tx.status == REVERTED:
        events.chain_tx_final.send(tx, receipt=None)
    _announce(tx)


def roll_back(tx: ChainTx, why: str) -> bool:
    """The chain no longer holds this included transaction: back to pending, effects undone by
    the listeners of ``events.chain_tx_undone``, to be sent again in nonce order.

    A revert that was already final had its failure applied (a reservation given back...):
    sending the same call again might now succeed behind the database's back, so it becomes
    failed instead and ``repair_signer`` fills its nonce with a no-op. A final transaction
    lost at all is a rollback deeper than finality: an alert.
    """
    was, was_final, block = tx.status, tx.final_at is not None, tx.block_number
    if was not in INCLUDED_STATUSES:
        return False
    keep_failure = was == REVERTED and was_final
    message = (
        f"Reverted, then its block was dropped by the chain ({why}); its nonce is filled "
        "with a no-op, the call is not sent again."
        if keep_failure
        else f"Its block was dropped by the chain ({why}); it is being sent again."
    )
    values = {
        "status": FAILED if keep_failure else PENDING,
        "block_number": None,
        "block_hash": None,
        "confirmed_at": None,
        "final_at": tx.final_at if keep_failure else None,
        "rollbacks": ChainTx.rollbacks + 1,
        "error": message,
    }
    if not _write(
        tx,
        update(ChainTx)
        .where(ChainTx.id == tx.id, ChainTx.status == was, ChainTx.block_hash == tx.block_hash)
        .values(**values),
    ):
        return False
    log.warning("transaction %s rolled back by the chain (%s), was %s", tx.id, why, was)
    events.chain_tx_undone.send(tx, was=was, deep=was_final)
    if was_final:
        alerts.raise_alert(
            alerts.DEEP_ROLLBACK,
            f"Transaction {tx.id} ({tx.purpose}) was final in block {block}, and the chain no "
            f"longer has it ({why}): a rollback deeper than finality "
            f"({finality.confirmations(tx.chain_id)} blocks). Its effects are pending again; "
            "it is sent again.",
            tx=tx,
            block_number=block,
        )
    _announce(tx)
    return True


def repair_signer(signer: ChainSigner, w3) -> dict:
    """Make the node's view of this signer's nonces match the database's, after a rollback or a
    node that lost its pool: every included transaction at or above the node's nonce is rolled
    back; if the node's pending count is behind the database's next nonce, the stored signed
    transactions from the node's nonce up are queued for broadcast in nonce order (after the
    caller commits), and a nonce without a live transaction gets a 0-value self transfer."""
    latest = w3.eth.get_transaction_count(signer.address, "latest")
    pending = sync_next_nonce(signer, w3)
    db.session.refresh(signer)
    rows = list(
        db.session.scalars(
            select(ChainTx)
            .where(ChainTx.signer_id == signer.id, ChainTx.nonce >= latest)
            .where(ChainTx.status != FAILED)
            .order_by(ChainTx.nonce)
        )
    )
    rolled = 0
    for tx in rows:
        if tx.status not in INCLUDED_STATUSES or _still_mined(w3, tx):
            continue  # the node's nonce was read before this one's block: not a rollback
        if roll_back(tx, "its nonce is not used on chain"):
            rolled += 1
            ensure_follow_up(tx)
    live = {tx.nonce: tx for tx in rows if tx.status != FAILED}
    report = {"latest": latest, "pending": pending, "next": signer.next_nonce, "rolled": rolled}
    if pending >= signer.next_nonce and not rolled:
        return {**report, "resent": 0, "filled": 0}
    resent = filled = 0
    for nonce in range(latest, signer.next_nonce):
        tx = live.get(nonce)
        if tx is None:
            _fill(signer, nonce, w3)
            filled += 1
            continue
        version = next((v for v in tx.broadcasts if v.tx_hash == tx.tx_hash), tx.broadcasts[-1])
        _broadcast_after_commit(version, tx)
        resent += 1
    if filled:
        alerts.raise_alert(
            alerts.NONCE_GAP,
            f"Signer {signer.name}: {filled} nonce(s) from {latest} had no transaction that "
            "would be sent; filled with 0-value self transfers so later transactions can be mined.",
            chain_id=w3.eth.chain_id,
        )
    if resent or filled:
        log.warning("signer %s repaired: %s", signer.name, report)
    return {**report, "resent": resent, "filled": filled}


def _still_mined(w3, tx: ChainTx) -> bool:
    receipt = _receipt_of(w3, tx.tx_hash)
    return receipt is not None and _hex(receipt["blockHash"]) == tx.block_hash


def _fill(signer: ChainSigner, nonce: int, w3) -> ChainTx:
    """A no-op at ``nonce``, priced above anything signed before at that nonce (a node replaces
    a pooled transaction only for a higher fee)."""
    priority, max_fee = _fees(w3)
    olds = db.session.execute(
        select(ChainTxBroadcast.max_fee_per_gas, ChainTxBroadcast.max_priority_fee_per_gas)
        .join(ChainTx)
        .where(ChainTx.signer_id == signer.id, ChainTx.nonce == nonce)
    ).all()
    for old_fee, old_priority in olds:
        priority = max(priority, old_priority * 5 // 4 + 1)
        max_fee = max(max_fee, old_fee * 5 // 4 + 1, priority)
    tx = ChainTx(
        signer_id=signer.id,
        project_id=None,
        chain_id=w3.eth.chain_id,
        nonce=nonce,
        purpose=NOOP_PURPOSE,
        to_address=signer.address,
        data="0x",
        value=0,
        gas_limit=21_000,
        status=PENDING,
    )
    db.session.add(tx)
    db.session.flush()
    _sign(tx, signer, priority, max_fee)
    dispatch.enqueue("chain.confirm", {"tx_id": tx.id})
    return tx


def _receipt_of(w3, tx_hash: str | None):
    if not tx_hash:
        return None
    try:
        return w3.eth.get_transaction_receipt(tx_hash)
    except TransactionNotFound:
        return None


def _hex(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return str(value)


def _final_failure(tx: ChainTx, message: str) -> None:
    if not _claim_final(tx):
        return
    tx.status = FAILED
    tx.error = message
    tx.final_at = utcnow()
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
        "final": tx.final_at is not None,
        "fee_ceiling_reached": tx.fee_capped_at is not None,
        "rollbacks": tx.rollbacks or 0,
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

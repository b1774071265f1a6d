"""The chain side of paying a vendor: ``settle`` burns what the vendor was paid off chain.

The settlement flow (its records, approvals and payouts live elsewhere) calls:

``prepare_settle(project_id, settlement_key, vendor_id, amount) -> ChainTx``
    In the caller's unit of work: records a ``ChainSettlement`` and signs the ``settle`` call;
    it is broadcast only after the caller commits (``txmanager``), and a rollback forgets both.
    ``settlement_key`` is the flow's own reference (e.g. its record id as a string); calling
    again with the same key returns the same transaction (or, after a final failure, signs a
    new one), so a retried job never settles twice; the contract refuses an id used before.
    Raises ``Conflict`` (no version-2 contract, or the key reused for other figures) and
    ``txmanager.Reverted`` (the contract would refuse: more than the vendor holds, over a cap,
    paused), with the refusal recorded if the caller commits.

``request_settle(...)``
    The same, from a ``chain.settle`` job instead of the caller's transaction.

``events.chain_settlement_changed``
    Sent with the ``ChainSettlement`` and ``action``: ``chain.settled`` once the burn is
    included (``data["key"]`` is the flow's key), ``chain.settle_undone`` when the chain drops
    it (back to waiting; it is sent again by the chain's own recovery), ``chain.settle_failed``
    when it failed for good. Applied at most once each (``chain_effects``).

``vendor_balance(project_id, vendor_id) -> int``
    What the vendor holds on chain and can still be settled, in base units.
"""

from __future__ import annotations

from sqlalchemy import select

from portal import events
from portal.chain import addresses, contracts, effects, setup, txmanager
from portal.chain.models import (
    CONFIRMED,
    DEPLOYED,
    OPEN_STATUSES,
    SETTLED,
    SETTLING,
    ChainSettlement,
    ChainTx,
)
from portal.errors import Conflict
from portal.extensions import db
from portal.jobs import dispatch
from portal.money import amounts
from portal.transitions import change, insert_or_skip

REF = "chain_settlement"
FAILED = "failed"


def _contract_of(project_id: int):
    pc = setup.state(project_id)
    if pc is None or pc.status != DEPLOYED or pc.version < 2:
        raise Conflict(
            "This project's payment set-up is too old to settle vendors; "
            "an administrator can upgrade it."
        )
    return pc


def _record(project_id: int, settlement_key: str, vendor_id: int, amount: int):
    pc = _contract_of(project_id)
    amounts.check(amount, pc.decimals)
    if amount <= 0:
        raise Conflict("A settlement needs an amount above zero.")
    key = str(settlement_key)[:80]
    insert_or_skip(
        ChainSettlement,
        {
            "project_id": project_id,
            "key": key,
            "vendor_id": vendor_id,
            "amount": amount,
            "status": SETTLING,
        },
    )
    row = db.session.scalar(
        select(ChainSettlement)
        .where(ChainSettlement.key == key)
        .execution_options(populate_existing=True)
    )
    if (row.project_id, row.vendor_id, row.amount) != (project_id, vendor_id, amount):
        raise Conflict("This settlement key was used for another project, vendor or amount.")
    return pc, row


def prepare_settle(project_id: int, settlement_key: str, vendor_id: int, amount: int) -> ChainTx:
    pc, row = _record(project_id, settlement_key, vendor_id, amount)
    return _sign(pc, row)


def request_settle(project_id: int, settlement_key: str, vendor_id: int, amount: int):
    """Record the settlement and queue the ``chain.settle`` job that signs it."""
    _pc, row = _record(project_id, settlement_key, vendor_id, amount)
    db.session.flush()
    dispatch.enqueue("chain.settle", {"settlement_id": row.id}, project_id=project_id)
    return row


def send(settlement_id: int) -> str:
    """The ``chain.settle`` job."""
    row = db.session.get(ChainSettlement, settlement_id)
    if row is None:
        return "nothing to do"
    try:
        tx = _sign(setup.state(row.project_id), row)
    except txmanager.Reverted as exc:
        return f"refused by the contract: {exc.reason}"
    return f"transaction {tx.id} ({tx.status})"


def _sign(pc, row: ChainSettlement) -> ChainTx:
    if row.tx_id is not None:
        tx = db.session.get(ChainTx, row.tx_id)
        if tx is not None and tx.status in (*OPEN_STATUSES, CONFIRMED):
            if tx.status in OPEN_STATUSES:
                txmanager.ensure_follow_up(tx)
            return tx
        # Refused, reverted or given up: another try; the contract's settlementDone guards
        # against a second burn whatever happened before.
    settle_id = addresses.settlement_key(row.key)
    data = contracts.encode(
        contracts.ENTITLEMENTS_V2,
        "settle",
        settle_id,
        addresses.vendor_address(row.vendor_id),
        row.amount,
    )
    try:
        tx = txmanager.submit(
            purpose="settle",
            to=pc.contract_address,
            data=data,
            project_id=row.project_id,
            ref=(REF, row.id),
        )
    except txmanager.Reverted as exc:
        row.tx_id = exc.tx.id
        row.status = FAILED
        _changed(row, "chain.settle_failed", f"refused: {exc.reason}", exc.tx.id)
        raise
    row.tx_id = tx.id
    row.status = SETTLING
    return tx


def vendor_balance(project_id: int, vendor_id: int) -> int:
    """The vendor's balance on chain: held in the contract (version 2), or the tokens at its
    derived address (version 1)."""
    pc = setup.state(project_id)
    if pc is None or pc.status != DEPLOYED:
        return 0
    owner = addresses.vendor_address(vendor_id)
    if pc.version >= 2:
        return contracts.of_project(pc).functions.vendorBalanceOf(owner).call()
    return contracts.at(contracts.PROJECT_TOKEN, pc.token_address).functions.balanceOf(owner).call()


def settled_on_chain(project_id: int, settlement_key: str) -> bool:
    pc = _contract_of(project_id)
    settle_id = addresses.settlement_key(settlement_key)
    return contracts.of_project(pc).functions.settlementDone(settle_id).call()


def _changed(row: ChainSettlement, action: str, what: str, tx_id: int | None) -> None:
    events.chain_settlement_changed.send(
        row,
        action=action,
        summary=f"Project {row.project_id}: settlement {row.key} {what}",
        project_id=row.project_id,
        data={"key": row.key, "vendor_id": row.vendor_id, "amount": row.amount, "tx_id": tx_id},
    )


def _on_final(tx: ChainTx, **_) -> None:
    if tx.ref_type != REF:
        return
    row = db.session.get(ChainSettlement, tx.ref_id)
    if row is None or row.tx_id != tx.id:
        return
    if tx.status == CONFIRMED:
        if effects.apply(effects.SETTLEMENT, row.id, tx_id=tx.id, amount=row.amount):
            change(ChainSettlement, row.id, (SETTLING, FAILED), SETTLED)
            db.session.refresh(row, attribute_names=["status"])
            _changed(row, "chain.settled", "settled on chain", tx.id)
    elif not effects.applied(effects.SETTLEMENT, row.id) and change(
        ChainSettlement, row.id, (SETTLING,), FAILED
    ):
        db.session.refresh(row, attribute_names=["status"])
        _changed(row, "chain.settle_failed", f"failed on chain ({tx.error or tx.status})", tx.id)


def _on_undone(tx: ChainTx, *, was: str, **_) -> None:
    if tx.ref_type != REF or was != CONFIRMED:
        return
    if effects.undo(effects.SETTLEMENT, tx.ref_id) is None:
        return
    change(ChainSettlement, tx.ref_id, (SETTLED,), SETTLING)
    row = db.session.get(ChainSettlement, tx.ref_id)
    db.session.refresh(row, attribute_names=["status"])
    _changed(row, "chain.settle_undone", "waiting again (chain reorg)", tx.id)


def connect() -> None:
    events.chain_tx_final.connect(_on_final, weak=False)
    events.chain_tx_undone.connect(_on_undone, weak=False)

"""Moving a project deployed before settlement (version 1) to the version-2 contracts.

Version 1 cannot be upgraded in place: its token has no burn, its operator holds every role,
and the value it paid to vendors sits at addresses nobody holds a key for. So the migration
deploys a fresh ProjectTokenV2 + EntitlementsV2 pair and carries the books over:

1. freeze: the project's chain state becomes ``migrating`` (no allocation or redemption
   starts; the command refuses while any transaction or redemption is in flight);
2. deploy the version-2 pair (roles to the treasury, operator role to the operator);
3. retire the old pair: the operator renounces every role it holds on the old token and
   contract, so the old books can never change again (and no old token can be minted);
4. read the frozen old books from the chain (event logs; vendor token balances);
5. the treasury mints exactly their total (entitlements + vendor balances + unallocated) into
   the new contract and imports each entitlement and vendor balance (``importBalances``, in
   batches whose ids are recorded on chain);
6. switch the project to the new addresses, version 2, ``funded`` = the new supply.

With a multisig treasury (``CHAIN_TREASURY_ADDRESS`` without a key) the portal signs steps 1-4
(the operator's) and prepares step 5 for the signers: ``advance`` answers
``WAITING_FOR_SIGNERS`` and ``unsigned_calls`` lists the mint, then (once it is final) the
import batches, as unsigned transactions (from, to, data, value, chain id, suggested gas). The
signers send them from their wallet in that order; the command (re-run, or left waiting with
``--wait-signers``) finds them on chain, final, by the same checks as for its own
(``totalSupply``, ``batchDone``), and goes on to step 6.

Nothing is lost (the new contract holds what the old one held and what vendors were owed) or
doubled (the old tokens can no longer move or be minted, and the portal reads only the new
pair). Every step is found again from the chain or its recorded transaction, so the command
can be run again after any interruption. The old tokens stay where they are, frozen.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from sqlalchemy import select

from portal import crypto, events
from portal.chain import client, contracts, finality, ledger_verify, setup, signers, txmanager
from portal.chain.models import (
    CONFIRMED,
    DEPLOYED,
    OPEN_STATUSES,
    ChainMigration,
    ChainTx,
    ProjectChain,
)
from portal.extensions import db
from portal.ledger import funds
from portal.timeutil import utcnow

REF = "chain_migration"
MIGRATING = "migrating"
IMPORT_BATCH = 300
DEFAULT_ADMIN = b"\x00" * 32
WAITING_FOR_SIGNERS = "waiting for the treasury's signers"
# Suggested gas for the signers' wallets (measured: a mint ~70,000; an import of 300 ~7.2M).
MINT_GAS = 120_000
IMPORT_GAS_PER_ACCOUNT = 26_000
IMPORT_GAS_BASE = 80_000


class MigrationError(Exception):
    pass


def _role(name: str) -> bytes:
    from web3 import Web3

    return bytes(Web3.keccak(text=name))


def _tx(project_id: int, purpose: str) -> ChainTx | None:
    """The latest transaction of this step, if any."""
    return db.session.scalar(
        select(ChainTx)
        .where(ChainTx.ref_type == REF, ChainTx.ref_id == project_id, ChainTx.purpose == purpose)
        .order_by(ChainTx.id.desc())
        .limit(1)
    )


def _open_txs(project_id: int) -> list[ChainTx]:
    return db.session.scalars(
        select(ChainTx).where(
            ChainTx.project_id == project_id,
            ChainTx.status.in_(OPEN_STATUSES)
            | ((ChainTx.status == CONFIRMED) & ChainTx.final_at.is_(None)),
        )
    ).all()


def _submit(project_id: int, purpose: str, to, data: str, signer=None) -> ChainTx:
    return txmanager.submit(
        purpose=purpose,
        to=to,
        data=data,
        project_id=project_id,
        ref=(REF, project_id),
        signer=signer,
    )


def batch_id(project_id: int, kind: str, number: int) -> str:
    digest = hmac.new(
        crypto.derived_key("chain"),
        f"migration:{project_id}:{kind}:{number}".encode(),
        hashlib.sha256,
    ).hexdigest()
    return "0x" + digest


def start(project_id: int) -> ChainMigration:
    found = db.session.get(ChainMigration, project_id)
    if found is not None:
        return found
    pc = setup.state(project_id)
    if pc is None or pc.status != DEPLOYED or pc.contract_kind != contracts.ENTITLEMENTS:
        raise MigrationError("Only a deployed entitlements project can be migrated.")
    if pc.version >= 2:
        raise MigrationError("This project already runs the version-2 contracts.")
    from portal.redemptions.models import IN_FLIGHT, Redemption

    busy = db.session.scalar(
        select(Redemption.id)
        .where(Redemption.project_id == project_id, Redemption.status.in_(IN_FLIGHT))
        .limit(1)
    )
    if busy is not None or _open_txs(project_id):
        raise MigrationError(
            "Transactions or redemptions of this project are still in flight; try again "
            "when they are final."
        )
    migration = ChainMigration(
        project_id=project_id,
        old_token_address=pc.token_address,
        old_contract_address=pc.contract_address,
        old_contract_tx_id=pc.contract_tx_id,
    )
    db.session.add(migration)
    pc.status = MIGRATING
    db.session.flush()
    _changed(pc, "chain.migration_started", "migration to version 2 started", {})
    return migration


def advance(project_id: int) -> str:
    """Send whatever step is due; returns what it did or waits for."""
    migration = start(project_id)
    if migration.status == "done":
        return "done"
    pending = [tx for tx in _open_txs(project_id) if tx.status in OPEN_STATUSES]
    if pending:
        return f"waiting for {len(pending)} transaction(s)"
    pc = setup.state(project_id)
    operator = signers.operator()
    multisig = signers.multisig()
    # The treasury's address takes the new roles either way; its key signs only if we hold it.
    treasury_address = signers.treasury_address()
    treasury = None if multisig else signers.treasury()
    project_name = pc.symbol

    # 2. the version-2 pair
    if migration.new_token_address is None:
        tx = _tx(project_id, "migrate.deploy_token")
        if tx is not None and tx.status == CONFIRMED:
            migration.new_token_address = tx.contract_address
        else:
            _submit(
                project_id,
                "migrate.deploy_token",
                None,
                contracts.deploy_data(
                    contracts.PROJECT_TOKEN_V2,
                    f"{project_name} entitlement v2",
                    pc.symbol,
                    pc.decimals,
                    treasury_address,
                ),
            )
            return "token sent"
    if migration.new_contract_address is None:
        tx = _tx(project_id, "migrate.deploy_contract")
        if tx is not None and tx.status == CONFIRMED:
            migration.new_contract_address = tx.contract_address
        else:
            per_tx, per_day = setup.caps(pc.decimals)
            _submit(
                project_id,
                "migrate.deploy_contract",
                None,
                contracts.deploy_data(
                    contracts.ENTITLEMENTS_V2,
                    migration.new_token_address,
                    treasury_address,
                    operator.address,
                    per_tx,
                    per_day,
                ),
            )
            return "contract sent"

    # 3. retire the old pair: the operator gives up every role it holds there
    old_token = contracts.at(contracts.PROJECT_TOKEN, migration.old_token_address)
    old_contract = contracts.at(contracts.ENTITLEMENTS, migration.old_contract_address)
    sent = 0
    for where, name, role in (
        (old_token, contracts.PROJECT_TOKEN, _role("MINTER_ROLE")),
        (old_token, contracts.PROJECT_TOKEN, DEFAULT_ADMIN),
        (old_contract, contracts.ENTITLEMENTS, _role("OPERATOR_ROLE")),
        (old_contract, contracts.ENTITLEMENTS, DEFAULT_ADMIN),
    ):
        if where.functions.hasRole(role, operator.address).call():
            data = contracts.encode(name, "renounceRole", role, operator.address)
            _submit(project_id, "migrate.retire", where.address, data)
            sent += 1
    if sent:
        return f"{sent} role(s) renounced on the old contracts"

    # 4. the frozen old books
    if migration.entitlements_total is None:
        books = _old_books(migration)
        migration.entitlements_total = sum(books["entitlements"].values())
        migration.vendors_total = sum(books["vendors"].values())
        migration.unallocated = old_contract.functions.available().call()
    total = migration.entitlements_total + migration.vendors_total + migration.unallocated

    # 5. mint the total and import the balances, signed by the treasury
    new_token = contracts.at(contracts.PROJECT_TOKEN_V2, migration.new_token_address)
    if multisig:
        if _treasury_calls(migration, total):
            return WAITING_FOR_SIGNERS
    else:
        calls = _treasury_calls(migration, total)
        for call in calls:
            _submit(project_id, call["purpose"], call["to"], call["data"], treasury)
        if calls:
            return (
                "mint sent"
                if calls[0]["purpose"] == "migrate.mint"
                else (f"{len(calls)} import batch(es) sent")
            )

    # 6. switch the project over
    new_token_tx = _tx(project_id, "migrate.deploy_token")
    new_contract_tx = _tx(project_id, "migrate.deploy_contract")
    pc.token_address = migration.new_token_address
    pc.contract_address = migration.new_contract_address
    pc.token_tx_id = new_token_tx.id
    pc.contract_tx_id = new_contract_tx.id
    pc.version = 2
    pc.admin_address = treasury_address
    funds.rebase_funded(project_id, new_token.functions.totalSupply().call())
    pc.status = DEPLOYED
    migration.status = "done"
    migration.finished_at = utcnow()
    _changed(
        pc,
        "chain.migrated",
        "migrated to version 2",
        {
            "entitlements": migration.entitlements_total,
            "vendors": migration.vendors_total,
            "unallocated": migration.unallocated,
            "new_contract": pc.contract_address,
        },
    )
    from portal.chain import vendors

    vendors.sync_project(project_id)
    return "done"


def _treasury_calls(migration: ChainMigration, total: int) -> list[dict]:
    """What the treasury must still send, read from the chain: the mint while the new supply is
    zero, else the import batches not done yet. With a multisig the chain is read at the last
    final block, so a signer's transaction counts only once it cannot be rolled back."""
    project_id = migration.project_id
    new_token = contracts.at(contracts.PROJECT_TOKEN_V2, migration.new_token_address)
    new_contract = contracts.at(contracts.ENTITLEMENTS_V2, migration.new_contract_address)
    block = "latest"
    if signers.multisig():
        pc = db.session.get(ProjectChain, project_id)
        latest = client.web3().eth.block_number
        block = max(latest - finality.confirmations(pc.chain_id) + 1, 0)
    if total and new_token.functions.totalSupply().call(block_identifier=block) == 0:
        data = contracts.encode(
            contracts.PROJECT_TOKEN_V2, "mint", migration.new_contract_address, total
        )
        return [_call("migrate.mint", migration.new_token_address, data, MINT_GAS)]
    books = _old_books(migration)
    calls = []
    for kind, is_vendor in (("entitlements", False), ("vendors", True)):
        items = sorted((a, v) for a, v in books[kind].items() if v > 0)
        for number, first in enumerate(range(0, len(items), IMPORT_BATCH)):
            chunk = items[first : first + IMPORT_BATCH]
            key = batch_id(project_id, kind, number)
            if new_contract.functions.batchDone(key).call(block_identifier=block):
                continue
            data = contracts.encode(
                contracts.ENTITLEMENTS_V2,
                "importBalances",
                key,
                [a for a, _ in chunk],
                [v for _, v in chunk],
                is_vendor,
            )
            gas = IMPORT_GAS_BASE + IMPORT_GAS_PER_ACCOUNT * len(chunk)
            calls.append(_call("migrate.import", migration.new_contract_address, data, gas))
    return calls


def _call(purpose: str, to: str, data: str, gas: int) -> dict:
    return {"purpose": purpose, "to": to, "data": data, "gas": gas}


def unsigned_calls(project_id: int) -> list[dict]:
    """For a multisig treasury: the transactions its signers must send now, in order (empty
    when none is due)."""
    migration = db.session.get(ChainMigration, project_id)
    if migration is None or migration.status == "done" or migration.entitlements_total is None:
        return []
    pc = db.session.get(ProjectChain, project_id)
    total = migration.entitlements_total + migration.vendors_total + migration.unallocated
    return [
        {
            "step": call["purpose"].removeprefix("migrate."),
            "from": signers.treasury_address(),
            "to": call["to"],
            "data": call["data"],
            "value": 0,
            "chainId": pc.chain_id,
            "gas": call["gas"],
        }
        for call in _treasury_calls(migration, total)
    ]


def _old_books(migration: ChainMigration) -> dict:
    start_block = db.session.scalar(
        select(ChainTx.block_number).where(ChainTx.id == migration.old_contract_tx_id)
    )
    ledger = ledger_verify.read_logs(migration.old_contract_address, start_block or 0)
    old_token = contracts.at(contracts.PROJECT_TOKEN, migration.old_token_address)
    # Version 1 paid vendors in tokens at keyless addresses: their balances are what is owed.
    vendors = {a: old_token.functions.balanceOf(a).call() for a in ledger.vendors}
    return {"entitlements": dict(ledger.entitlements), "vendors": vendors}


def report(project_id: int) -> dict:
    migration = db.session.get(ChainMigration, project_id)
    pc = db.session.get(ProjectChain, project_id)
    if migration is None:
        return {"project_id": project_id, "status": "not started"}
    return {
        "project_id": project_id,
        "status": migration.status,
        "version": pc.version,
        "old_contract": migration.old_contract_address,
        "new_contract": migration.new_contract_address,
        "entitlements": migration.entitlements_total,
        "vendors": migration.vendors_total,
        "unallocated": migration.unallocated,
    }


def run(
    project_id: int,
    timeout: float = 600.0,
    *,
    wait_signers: float = 0.0,
    on_unsigned=None,
    poll_seconds: float = 5.0,
) -> dict:
    """Drive the migration to its end from a command: each step in its own transaction,
    followed on chain until final before the next. With a multisig treasury, when the signers'
    turn comes, ``on_unsigned(calls)`` is told what they must send (again whenever that list
    changes) and the chain is watched for up to ``wait_signers`` seconds."""
    deadline = time.monotonic() + timeout
    signers_deadline = None
    shown: list | None = None
    while time.monotonic() < deadline:
        step = advance(project_id)
        db.session.commit()
        if step == "done":
            break
        if step == WAITING_FOR_SIGNERS:
            calls = unsigned_calls(project_id)
            if calls != shown and on_unsigned is not None:
                on_unsigned(calls)
            shown = calls
            if signers_deadline is None:
                signers_deadline = time.monotonic() + wait_signers
            if time.monotonic() >= signers_deadline:
                break
            time.sleep(poll_seconds)
            continue
        for tx in _open_txs(project_id):
            txmanager.follow_up(tx, wait_seconds=2)
            db.session.commit()
    result = report(project_id)
    if result["status"] != "done" and shown:
        result["status"] = WAITING_FOR_SIGNERS
        result["unsigned"] = shown
    return result


def _changed(pc: ProjectChain, action: str, what: str, data: dict) -> None:
    events.project_chain_changed.send(
        pc,
        action=action,
        summary=f"Project {pc.project_id}: {what}",
        project_id=pc.project_id,
        data=data,
    )

"""A project's life on chain: deploy its token and contract, fund it, and say where it stands.

Deployment is two transactions (token, then the contract that needs the token's address), each
sent by a ``chain.deploy`` job; the follow-up of the first one, on confirmation, sends the job for
the second. Every step checks what is already recorded, so a re-run never deploys twice.
"""

from __future__ import annotations

import re

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal import events, realtime
from portal.chain import client, contracts, effects, signers, txmanager
from portal.chain.models import (
    CONFIRMED,
    DEPLOYED,
    DEPLOYING,
    FAILED,
    NOT_DEPLOYED,
    PENDING,
    ChainTx,
    Funding,
    ProjectChain,
)
from portal.errors import Conflict, ValidationFailed
from portal.extensions import db
from portal.jobs import dispatch
from portal.ledger import funds
from portal.money import amounts
from portal.projects.models import Project
from portal.transitions import change, insert_or_skip, move

CHAIN_UPDATED = "chain.project"
MAX_DECIMALS = 6  # keeps base-unit amounts inside a 64-bit column, see chain/models.py
SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9]{1,10}$")


def contract_kind_for(project: Project) -> str:
    return contracts.CASH_TRANSFER if project.type == "cash" else contracts.ENTITLEMENTS


def version_for(kind: str) -> int:
    """New entitlement projects get version 2; cash transfers have one version."""
    if kind != contracts.ENTITLEMENTS:
        return 1
    return int(current_app.config.get("CHAIN_CONTRACT_VERSION", 2))


def caps(decimals: int) -> tuple[list[int], list[int]]:
    """CHAIN_CAPS (whole units) in base units, per transaction and per day, in Action order."""
    table = current_app.config["CHAIN_CAPS"]
    ceiling = 2**128 - 1
    per_tx = [min(int(table[a][0]) * 10**decimals, ceiling) for a in contracts.CAP_ACTIONS]
    per_day = [min(int(table[a][1]) * 10**decimals, ceiling) for a in contracts.CAP_ACTIONS]
    return per_tx, per_day


def state(project_id: int) -> ProjectChain | None:
    return db.session.get(ProjectChain, project_id)


def start_deploy(project: Project, symbol: str, decimals: int, user_id: int | None) -> ProjectChain:
    if project.is_closed:
        raise Conflict(_("A closed project cannot be set up for payments."))
    symbol = (symbol or "").strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise ValidationFailed(
            {"symbol": _("2 to 11 capital letters or digits, starting with a letter.")}
        )
    if not 0 <= decimals <= MAX_DECIMALS:
        raise ValidationFailed({"decimals": _("Between 0 and %(max)s.", max=MAX_DECIMALS)})
    busy = _("This project's contracts are already deployed or on their way.")
    found = state(project.id)
    if found is not None and found.status != NOT_DEPLOYED:
        raise Conflict(busy)
    kind = contract_kind_for(project)
    version = version_for(kind)
    values = {
        "chain_id": client.web3().eth.chain_id,
        "symbol": symbol,
        "decimals": decimals,
        "contract_kind": kind,
        "version": version,
        "admin_address": signers.treasury_address() if version >= 2 else None,
    }
    if found is None:
        # Two first deploys at once: one row, made by whichever comes first.
        insert_or_skip(ProjectChain, {"project_id": project.id, "status": NOT_DEPLOYED, **values})
    pc = db.session.get(ProjectChain, project.id, populate_existing=True)
    # One deploy job per project, however many requests arrive together.
    move(pc, (NOT_DEPLOYED,), DEPLOYING, busy, **values)
    dispatch.enqueue(
        "chain.deploy", {"project_id": project.id}, project_id=project.id, created_by_id=user_id
    )
    _changed(
        pc,
        "chain.deploy_started",
        f"Project {project.id}: payment set-up started",
        {"symbol": symbol, "decimals": decimals, "kind": pc.contract_kind},
    )
    _announce(pc)
    return pc


def deploy_step(project_id: int) -> str:
    """Send the next deployment transaction, if one is due. Returns what it did."""
    pc = state(project_id)
    if pc is None or pc.status == DEPLOYED:
        return "nothing to do"
    project = db.session.get(Project, project_id)
    operator = signers.operator()
    # Version 2: the operator sends the deploy transactions but the constructors give the admin
    # and minter roles straight to the treasury, so the hot key never holds them, not even for a
    # block, and no hand-over is needed (which also works for a multisig treasury).
    admin = pc.admin_address if pc.version >= 2 else operator.address
    if pc.token_tx_id is None:
        data = contracts.deploy_data(
            contracts.token_name(pc),
            f"{project.name[:40]} entitlement",
            pc.symbol,
            pc.decimals,
            admin,
        )
        tx = txmanager.submit(
            purpose="deploy.token",
            to=None,
            data=data,
            project_id=project_id,
            ref=("project_chain", project_id),
        )
        pc.token_tx_id = tx.id
        return "token sent"
    if pc.token_address and pc.contract_tx_id is None:
        if pc.version >= 2:
            per_tx, per_day = caps(pc.decimals)
            data = contracts.deploy_data(
                contracts.ENTITLEMENTS_V2,
                pc.token_address,
                admin,
                operator.address,
                per_tx,
                per_day,
            )
        else:
            data = contracts.deploy_data(
                pc.contract_kind, pc.token_address, operator.address, operator.address
            )
        tx = txmanager.submit(
            purpose="deploy.contract",
            to=None,
            data=data,
            project_id=project_id,
            ref=("project_chain", project_id),
        )
        pc.contract_tx_id = tx.id
        return "contract sent"
    return "waiting for confirmation"


def start_funding(project: Project, amount: int, note: str, user_id: int | None) -> Funding:
    """Record a funding of ``amount`` base units (from ``amounts.parse``) and send its mint."""
    pc = state(project.id)
    if pc is None or pc.status != DEPLOYED:
        raise Conflict(_("Set up the project's payments before funding it."))
    if project.is_closed:
        raise Conflict(_("A closed project cannot be funded."))
    amounts.check(amount, pc.decimals)
    if pc.funded + pending_funding(project.id) + amount > amounts.COLUMN_MAX:
        raise amounts.AmountError(_("That would take the project's funding past what it can hold."))
    funding = Funding(
        project_id=project.id, amount=amount, note=(note or "")[:255], created_by_id=user_id
    )
    db.session.add(funding)
    db.session.flush()
    dispatch.enqueue(
        "chain.fund", {"funding_id": funding.id}, project_id=project.id, created_by_id=user_id
    )
    _changed(
        funding,
        "chain.funding_started",
        f"Project {project.id}: funding {funding.id} started",
        {"amount": amount, "symbol": pc.symbol, "decimals": pc.decimals},
    )
    return funding


def fund_step(funding_id: int) -> str:
    """Send the mint of a funding: the operator's on version 1, the treasury's on version 2.

    With a multisig treasury nothing is signed here: staff copy the prepared transaction
    (``treasury.prepared_mint``) to the signers, and ``chain.mint_watch`` records the mint when
    it appears on chain.
    """
    funding = db.session.get(Funding, funding_id)
    if funding is None or funding.tx_id is not None or funding.status != PENDING:
        return "nothing to do"
    pc = state(funding.project_id)
    data = contracts.encode(contracts.PROJECT_TOKEN, "mint", pc.contract_address, funding.amount)
    signer = None
    if pc.version >= 2:
        if signers.multisig():
            from portal.chain import treasury

            treasury.watch(funding)
            return "waiting for the treasury's signers"
        signer = signers.treasury()
    tx = txmanager.submit(
        purpose="fund",
        to=pc.token_address,
        data=data,
        project_id=funding.project_id,
        ref=("funding", funding.id),
        signer=signer,
    )
    funding.tx_id = tx.id
    return "mint sent"


def pending_funding(project_id: int) -> int:
    return db.session.scalar(
        select(func.coalesce(func.sum(Funding.amount), 0)).where(
            Funding.project_id == project_id, Funding.status == PENDING
        )
    )


def serialize(pc: ProjectChain) -> dict:
    return {
        "project_id": pc.project_id,
        "status": pc.status,
        "symbol": pc.symbol,
        "decimals": pc.decimals,
        "token_address": pc.token_address,
        "contract_address": pc.contract_address,
        "funded": pc.funded,
        "funded_display": amounts.format(pc.funded, pc.decimals),
        "version": pc.version,
    }


def _announce(pc: ProjectChain) -> None:
    realtime.emit_after_commit(CHAIN_UPDATED, serialize(pc), [realtime.project_room(pc.project_id)])


def _changed(row: ProjectChain | Funding, action: str, summary: str, data: dict) -> None:
    """A step of the project's life on chain, for the audit log (amounts in base units)."""
    events.project_chain_changed.send(
        row, action=action, summary=summary, project_id=row.project_id, data=data
    )


def _on_final(tx: ChainTx, receipt=None, **_) -> None:
    if tx.ref_type == "project_chain":
        pc = state(tx.ref_id)
        if pc is None:
            return
        if tx.status != CONFIRMED:
            pc.status = NOT_DEPLOYED if tx.purpose == "deploy.token" else pc.status
            if tx.purpose == "deploy.token":
                pc.token_tx_id = None
            else:
                pc.contract_tx_id = None
            _changed(
                pc,
                "chain.deploy_failed",
                f"Project {pc.project_id}: payment set-up failed (transaction {tx.id})",
                {"tx_id": tx.id},
            )
            _announce(pc)
            return
        if tx.purpose == "deploy.token":
            pc.token_address = tx.contract_address
            dispatch.enqueue(
                "chain.deploy", {"project_id": pc.project_id}, project_id=pc.project_id
            )
        elif tx.purpose == "deploy.contract":
            pc.contract_address = tx.contract_address
            pc.status = DEPLOYED
            if pc.version >= 2:
                from portal.chain import vendors

                vendors.sync_project(pc.project_id)
        _changed(
            pc,
            "chain.deployed" if pc.status == DEPLOYED else "chain.token_deployed",
            f"Project {pc.project_id}: payment set-up "
            + ("confirmed" if pc.status == DEPLOYED else "first step confirmed"),
            {"tx_id": tx.id, "address": tx.contract_address},
        )
        _announce(pc)
    elif tx.ref_type == "funding":
        funding = db.session.get(Funding, tx.ref_id)
        if funding is None:
            return
        if tx.status == CONFIRMED:
            _apply_funding(funding, tx.id)
        elif not effects.applied(effects.FUNDING, funding.id) and change(
            Funding, funding.id, (PENDING,), FAILED
        ):
            db.session.refresh(funding, attribute_names=["status"])
            _changed(
                funding,
                "chain.funding_failed",
                f"Project {funding.project_id}: funding {funding.id} failed",
                {"amount": funding.amount, "tx_id": tx.id},
            )


def _apply_funding(funding: Funding, tx_id: int | None, tx_hash: str | None = None) -> bool:
    """Count the mint once, however many follow-ups of it run at the same moment. ``tx_id`` is
    None for a mint signed outside the portal (multisig), known by its ``tx_hash``."""
    if not effects.apply(effects.FUNDING, funding.id, tx_id=tx_id, amount=funding.amount):
        return False
    change(Funding, funding.id, (PENDING, FAILED), CONFIRMED)
    db.session.refresh(funding, attribute_names=["status"])
    _changed(
        funding,
        "chain.funded",
        f"Project {funding.project_id}: funding {funding.id} confirmed",
        {"amount": funding.amount, "tx_id": tx_id, "tx_hash": tx_hash},
    )
    _add_funded(funding.project_id, funding.amount)
    return True


def _add_funded(project_id: int, amount: int) -> None:
    funds.add_funded(project_id, amount)
    pc = state(project_id)
    if pc is not None:
        db.session.refresh(pc)
        _announce(pc)


def _on_undone(tx: ChainTx, *, was: str, **_) -> None:
    """The chain dropped an included transaction: what it did here is pending again."""
    if was != CONFIRMED:
        return
    if tx.ref_type == "funding":
        undone = effects.undo(effects.FUNDING, tx.ref_id)
        if undone is None:
            return
        funding = db.session.get(Funding, tx.ref_id)
        change(Funding, funding.id, (CONFIRMED,), PENDING)
        db.session.refresh(funding, attribute_names=["status"])
        _changed(
            funding,
            "chain.funding_rolled_back",
            f"Project {funding.project_id}: funding {funding.id} is pending again "
            "(the payment network undid it)",
            {"amount": undone.amount, "tx_id": tx.id},
        )
        _add_funded(funding.project_id, -undone.amount)
    elif tx.ref_type == "project_chain":
        pc = state(tx.ref_id)
        if pc is None:
            return
        # The same signed transaction, mined again, deploys at the same address.
        if tx.purpose == "deploy.token":
            pc.token_address = None
        elif tx.purpose == "deploy.contract":
            pc.contract_address = None
        if pc.status == DEPLOYED:
            pc.status = DEPLOYING
        _changed(
            pc,
            "chain.deploy_rolled_back",
            f"Project {pc.project_id}: {tx.purpose} is pending again (chain reorg)",
            {"tx_id": tx.id},
        )
        _announce(pc)


def connect() -> None:
    events.chain_tx_final.connect(_on_final, weak=False)
    events.chain_tx_undone.connect(_on_undone, weak=False)

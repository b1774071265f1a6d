"""A project's life on chain: deploy its token and contract, fund it, and say where it stands.

Deployment is two transactions (token, then the contract that needs the token's address), each
sent by a ``chain.deploy`` job; the follow-up of the first one, on confirmation, sends the job for
the second. Every step checks what is already recorded, so a re-run never deploys twice.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select

from portal import events, realtime
from portal.chain import client, contracts, signers, txmanager
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
from portal.projects.models import Project
from portal.transitions import insert_or_skip, move

CHAIN_UPDATED = "chain.project"
MAX_DECIMALS = 6  # keeps base-unit amounts inside a 64-bit column, see chain/models.py
SYMBOL_RE = re.compile(r"^[A-Z][A-Z0-9]{1,10}$")


def contract_kind_for(project: Project) -> str:
    return contracts.CASH_TRANSFER if project.type == "cash" else contracts.ENTITLEMENTS


def state(project_id: int) -> ProjectChain | None:
    return db.session.get(ProjectChain, project_id)


def start_deploy(project: Project, symbol: str, decimals: int, user_id: int | None) -> ProjectChain:
    if project.is_closed:
        raise Conflict("A closed project cannot get contracts.")
    symbol = (symbol or "").strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise ValidationFailed(
            {"symbol": "2 to 11 capital letters or digits, starting with a letter."}
        )
    if not 0 <= decimals <= MAX_DECIMALS:
        raise ValidationFailed({"decimals": f"Between 0 and {MAX_DECIMALS}."})
    busy = "This project's contracts are already deployed or on their way."
    found = state(project.id)
    if found is not None and found.status != NOT_DEPLOYED:
        raise Conflict(busy)
    values = {
        "chain_id": client.web3().eth.chain_id,
        "symbol": symbol,
        "decimals": decimals,
        "contract_kind": contract_kind_for(project),
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
    _announce(pc)
    return pc


def deploy_step(project_id: int) -> str:
    """Send the next deployment transaction, if one is due. Returns what it did."""
    pc = state(project_id)
    if pc is None or pc.status == DEPLOYED:
        return "nothing to do"
    project = db.session.get(Project, project_id)
    operator = signers.operator()
    if pc.token_tx_id is None:
        data = contracts.deploy_data(
            contracts.PROJECT_TOKEN,
            f"{project.name[:40]} entitlement",
            pc.symbol,
            pc.decimals,
            operator.address,
        )
        tx = txmanager.submit(
            purpose="deploy.token",
            to=None,
            data=data,
            project_id=project_id,
            ref=("project_chain", project_id),
        )
        pc.token_tx_id = tx.id
        db.session.commit()
        return "token sent"
    if pc.token_address and pc.contract_tx_id is None:
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
        db.session.commit()
        return "contract sent"
    return "waiting for confirmation"


def parse_amount(text: str, decimals: int, field: str = "amount") -> int:
    """Display units ("12.50") to base units; refuses more decimals than the token has."""
    try:
        value = Decimal(str(text).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        raise ValidationFailed({field: "Enter an amount such as 1500 or 12.50."}) from None
    if not value.is_finite() or value <= 0:
        raise ValidationFailed({field: "The amount must be more than zero."})
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ValidationFailed({field: f"At most {decimals} digits after the decimal point."})
    base = int(scaled)
    if base >= 2**62:
        raise ValidationFailed({field: "That amount is too large."})
    return base


def format_amount(base: int | None, decimals: int) -> str:
    if base is None:
        return "–"
    value = Decimal(base).scaleb(-decimals)
    return f"{value:,.{decimals}f}"


def start_funding(project: Project, amount_text: str, note: str, user_id: int | None) -> Funding:
    pc = state(project.id)
    if pc is None or pc.status != DEPLOYED:
        raise Conflict("Deploy the project's contracts before funding it.")
    if project.is_closed:
        raise Conflict("A closed project cannot be funded.")
    amount = parse_amount(amount_text, pc.decimals)
    funding = Funding(
        project_id=project.id, amount=amount, note=(note or "")[:255], created_by_id=user_id
    )
    db.session.add(funding)
    db.session.flush()
    dispatch.enqueue(
        "chain.fund", {"funding_id": funding.id}, project_id=project.id, created_by_id=user_id
    )
    return funding


def fund_step(funding_id: int) -> str:
    funding = db.session.get(Funding, funding_id)
    if funding is None or funding.tx_id is not None:
        return "nothing to do"
    pc = state(funding.project_id)
    data = contracts.encode(contracts.PROJECT_TOKEN, "mint", pc.contract_address, funding.amount)
    tx = txmanager.submit(
        purpose="fund",
        to=pc.token_address,
        data=data,
        project_id=funding.project_id,
        ref=("funding", funding.id),
    )
    funding.tx_id = tx.id
    db.session.commit()
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
        "funded_display": format_amount(pc.funded, pc.decimals),
    }


def _announce(pc: ProjectChain) -> None:
    realtime.emit_after_commit(CHAIN_UPDATED, serialize(pc), [realtime.project_room(pc.project_id)])
    events.project_chain_changed.send(pc)


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
        _announce(pc)
    elif tx.ref_type == "funding":
        funding = db.session.get(Funding, tx.ref_id)
        if funding is None or funding.status != PENDING:
            return
        funding.status = CONFIRMED if tx.status == CONFIRMED else FAILED
        if tx.status == CONFIRMED:
            pc = state(funding.project_id)
            # In SQL, not in Python: two fundings may be confirmed at the same moment.
            pc.funded = ProjectChain.funded + funding.amount
            db.session.flush()
            db.session.refresh(pc)
            _announce(pc)


def connect() -> None:
    events.chain_tx_final.connect(_on_final, weak=False)

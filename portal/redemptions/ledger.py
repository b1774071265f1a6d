"""What a vendor sees of their redemptions: recent ones, history, balances per project."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Select, func, select

from portal.beneficiaries.models import Beneficiary
from portal.chain import addresses, client, contracts
from portal.chain.models import DEPLOYED, ChainTx, ProjectChain
from portal.extensions import db
from portal.projects.models import Project
from portal.redemptions.live import money
from portal.redemptions.models import IN_FLIGHT, SETTLED, Redemption
from portal.timeutil import utcnow
from portal.vendors.models import Vendor, VendorProject

log = logging.getLogger(__name__)


def since(vendor_id: int, start: datetime) -> list[Redemption]:
    return list(
        db.session.scalars(
            select(Redemption)
            .where(Redemption.vendor_id == vendor_id, Redemption.created_at >= start)
            .order_by(Redemption.id.desc())
            .limit(100)
        )
    )


def recent(vendor_id: int, hours: int = 24) -> list[Redemption]:
    return since(vendor_id, utcnow() - timedelta(hours=hours))


def history(vendor_id: int) -> Select:
    return (
        select(Redemption).where(Redemption.vendor_id == vendor_id).order_by(Redemption.id.desc())
    )


@dataclass
class Balance:
    project: Project
    chain: ProjectChain
    settled: int = 0
    pending: int = 0
    count: int = 0
    on_chain: int | None = None

    @property
    def settled_text(self) -> str:
        return money(self.settled, self.chain)

    @property
    def pending_text(self) -> str:
        return money(self.pending, self.chain)

    @property
    def on_chain_text(self) -> str | None:
        return None if self.on_chain is None else money(self.on_chain, self.chain)


def balances(vendor: Vendor, with_chain: bool = False) -> list[Balance]:
    """Per project the vendor serves: what has settled on chain, and what is on its way; with
    ``with_chain``, also the vendor's token balance as the chain reports it."""
    found = {project.id: Balance(project, pc) for project, pc in served_chains(vendor)}
    rows = db.session.execute(
        select(Redemption.project_id, Redemption.status, func.sum(Redemption.amount), func.count())
        .where(Redemption.vendor_id == vendor.id, Redemption.status.in_((SETTLED, *IN_FLIGHT)))
        .group_by(Redemption.project_id, Redemption.status)
    ).all()
    for project_id, status, total, count in rows:
        balance = found.get(project_id)
        if balance is None:
            continue
        if status == SETTLED:
            balance.settled += int(total or 0)
            balance.count += count
        else:
            balance.pending += int(total or 0)
    if with_chain:
        for balance in found.values():
            balance.on_chain = chain_balance(vendor.id, balance.chain)
    return list(found.values())


def served_chains(vendor: Vendor) -> list[tuple[Project, ProjectChain]]:
    rows = db.session.execute(
        select(Project, ProjectChain)
        .join(VendorProject, VendorProject.project_id == Project.id)
        .join(ProjectChain, ProjectChain.project_id == Project.id)
        .where(VendorProject.vendor_id == vendor.id, ProjectChain.status == DEPLOYED)
        .order_by(Project.name, Project.id)
    ).all()
    return [(project, pc) for project, pc in rows]


def seconds_left(redemption: Redemption) -> int:
    return max(int((redemption.code_expires_at - utcnow()).total_seconds()), 0)


def person_ref(redemption: Redemption) -> str:
    return db.session.scalar(
        select(Beneficiary.ref).where(Beneficiary.id == redemption.beneficiary_id)
    )


def person_of(redemption: Redemption) -> Beneficiary | None:
    if redemption.beneficiary_id is None:
        return None
    return db.session.get(Beneficiary, redemption.beneficiary_id)


def project_of(redemption: Redemption) -> Project:
    return db.session.get(Project, redemption.project_id)


def tx_hash_of(redemption: Redemption) -> str | None:
    if redemption.chain_tx_id is None:
        return None
    return db.session.scalar(select(ChainTx.tx_hash).where(ChainTx.id == redemption.chain_tx_id))


def chain_balance(vendor_id: int, pc: ProjectChain) -> int | None:
    """The vendor's token balance on chain, or None when the chain is not at hand.

    A page never boots the embedded EVM for this: it is read only where this process already
    has a chain client (``flask serve`` with its workers) or talks to a node. Only the page that
    asks for it reads it (the home page shows the database's ledger), and an answer is kept
    ``CHAIN_BALANCE_CHECK_SECONDS``: a vendor pressing "check" again does not reach the node.
    """
    if client.is_embedded() and "portal_web3" not in current_app.extensions:
        return None
    owner = addresses.vendor_address(vendor_id)

    def read() -> int:
        if pc.version >= 2:  # held inside the contract until settled
            return contracts.of_project(pc).functions.vendorBalanceOf(owner).call()
        token = contracts.at(contracts.PROJECT_TOKEN, pc.token_address)
        return token.functions.balanceOf(owner).call()

    try:
        return client.remembered(
            ("token-balance", pc.token_address, owner),
            current_app.config["CHAIN_BALANCE_CHECK_SECONDS"],
            read,
        )
    except Exception:  # a balance line is not worth a failed page
        log.warning("could not read a vendor's token balance", exc_info=True)
        return None

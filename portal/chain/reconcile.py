"""Does the chain equal the database? For each deployed project, what its contracts hold against
what the database recorded: funding minted, entitlements outstanding, batches done.

Read-only; ``flask chain-check`` prints it and exits 1 on a difference. Redemptions in flight
(reserved in the database, not yet mined) are counted apart: the chain does not have them yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from portal.chain import contracts
from portal.chain.models import (
    DEPLOYED,
    ChainMigration,
    ChainSettlement,
    ProjectChain,
)
from portal.chain.models import (
    SETTLED as CHAIN_SETTLED,
)
from portal.disbursements.models import B_CONFIRMED, Disbursement, DisbursementBatch, Entitlement
from portal.extensions import db
from portal.redemptions.models import SETTLED, Redemption


@dataclass
class ProjectCheck:
    project_id: int
    chain: dict = field(default_factory=dict)
    database: dict = field(default_factory=dict)
    differences: list[str] = field(default_factory=list)


@dataclass
class Report:
    projects: list[ProjectCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(p.differences for p in self.projects)

    @property
    def differences(self) -> list[str]:
        return [f"project {p.project_id}: {d}" for p in self.projects for d in p.differences]


def check(project_ids: list[int] | None = None) -> Report:
    query = select(ProjectChain).where(ProjectChain.status == DEPLOYED)
    if project_ids is not None:
        query = query.where(ProjectChain.project_id.in_(project_ids))
    report = Report()
    for pc in db.session.scalars(query.order_by(ProjectChain.project_id)):
        report.projects.append(_project(pc))
    return report


def _project(pc: ProjectChain) -> ProjectCheck:
    found = ProjectCheck(pc.project_id)
    token = contracts.at(contracts.token_name(pc), pc.token_address)
    contract = contracts.of_project(pc)
    supply = token.functions.totalSupply().call()
    held = token.functions.balanceOf(pc.contract_address).call()
    # Version 2 burns what is settled: the supply is what was funded less the settlements.
    burned = _burned(pc.project_id) if pc.version >= 2 else 0
    found.chain.update(funded=supply + burned, held_by_contract=held)
    found.database.update(funded=pc.funded)
    if supply + burned != pc.funded:
        found.differences.append(f"funded: chain {supply + burned}, database {pc.funded}")
    batches = db.session.execute(
        select(DisbursementBatch.id, DisbursementBatch.batch_key, DisbursementBatch.status)
        .join(Disbursement, Disbursement.id == DisbursementBatch.disbursement_id)
        .where(Disbursement.project_id == pc.project_id)
    ).all()
    # A migrated project's earlier batches were done on its version-1 contract.
    migration = db.session.get(ChainMigration, pc.project_id)
    places = [contract]
    if migration is not None:
        places.append(contracts.at(contracts.ENTITLEMENTS, migration.old_contract_address))
    done_on_chain = {
        b.id for b in batches if any(c.functions.batchDone(b.batch_key).call() for c in places)
    }
    confirmed = {b.id for b in batches if b.status == B_CONFIRMED}
    found.chain["batches_done"] = len(done_on_chain)
    found.database["batches_confirmed"] = len(confirmed)
    if done_on_chain != confirmed:
        found.differences.append(
            f"batches done on chain but not confirmed here {sorted(done_on_chain - confirmed)}, "
            f"confirmed here but not done on chain {sorted(confirmed - done_on_chain)}"
        )
    if pc.contract_kind == contracts.ENTITLEMENTS:
        _entitlements(pc, contract, supply, held, found)
    return found


def _entitlements(pc: ProjectChain, contract, supply: int, held: int, found: ProjectCheck):
    outstanding = contract.functions.outstanding().call()
    allocated, revoked = db.session.execute(
        select(
            func.coalesce(func.sum(Entitlement.allocated), 0),
            func.coalesce(func.sum(Entitlement.revoked), 0),
        ).where(Entitlement.project_id == pc.project_id)
    ).one()
    settled = db.session.scalar(
        select(func.coalesce(func.sum(Redemption.amount), 0)).where(
            Redemption.project_id == pc.project_id, Redemption.status == SETTLED
        )
    )
    expected = allocated - revoked - settled
    if pc.version >= 2:  # redeemed value stays inside as vendor balances, then is burned
        paid_on_chain = contract.functions.vendorHeld().call() + _burned(pc.project_id)
    else:
        paid_on_chain = supply - held  # tokens that left the contract: paid to vendors
    found.chain.update(outstanding=outstanding, paid_to_vendors=paid_on_chain)
    found.database.update(outstanding=expected, settled=settled)
    if outstanding != expected:
        found.differences.append(
            f"entitlements outstanding: chain {outstanding}, database {expected} "
            f"(allocated {allocated} - revoked {revoked} - settled {settled})"
        )
    if paid_on_chain != settled:
        found.differences.append(f"paid to vendors: chain {paid_on_chain}, database {settled}")


def _burned(project_id: int) -> int:
    return db.session.scalar(
        select(func.coalesce(func.sum(ChainSettlement.amount), 0)).where(
            ChainSettlement.project_id == project_id, ChainSettlement.status == CHAIN_SETTLED
        )
    )

"""``ledger-verify``: every entitlement, vendor balance and settlement, read from the chain in
bulk and compared with the database.

The chain side is rebuilt from the contract's own event log (``eth_getLogs`` over block ranges,
one request per range, not one call per person): ``Allocated``, ``Revoked``, ``Redeemed``,
``Settled`` and ``Imported`` give each beneficiary's entitlement and each vendor's balance.
The totals are then checked against the contract's ``outstanding`` (and ``vendorHeld`` on
version 2), so a log the node failed to return cannot hide a difference.

The database side: an entitlement should be ``allocated - revoked`` minus the redemptions the
chain has settled (a redemption accepted but not yet mined is reserved here, not there); a
vendor's balance is what its settled redemptions brought, less (version 2) what settlements
burned; a settlement recorded as settled must be on chain with the same vendor and amount.

Cash-outs (``_cash_outs``): a vendor's settlement is burned here exactly when the chain settled
its id, for its amount, once; whatever its payout did afterwards (failed, returned, tried
again) it was burned once and at most one of its payout tries is paid. What was burned and
not paid because the payout failed is owed to the vendor off chain and will be paid again:
it is reported as ``owed_again``, the credit that explains why burned ≠ paid.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import func, or_, select
from web3 import Web3

from portal.chain import addresses, client, contracts
from portal.chain.models import DEPLOYED, SETTLED, ChainSettlement, ChainTx, ProjectChain
from portal.disbursements.models import Entitlement
from portal.extensions import db
from portal.redemptions.models import SETTLED as REDEMPTION_SETTLED
from portal.redemptions.models import Redemption


def _topic(signature: str) -> str:
    return "0x" + Web3.keccak(text=signature).hex().removeprefix("0x")


# Allocated, Revoked, Redeemed, Settled, Imported: their topic0, in the order read_chain tests.
TOPICS = [
    _topic("Allocated(address,uint256)"),
    _topic("Revoked(address,uint256)"),
    _topic("Redeemed(bytes32,address,address,uint256)"),
    _topic("Settled(bytes32,address,uint256)"),
    _topic("Imported(bytes32,address,bool,uint256)"),
]
MAX_LISTED = 200  # mismatches listed per project; all are counted


@dataclass
class ChainLedger:
    entitlements: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    vendors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    settlements: dict[str, tuple[str, int]] = field(default_factory=dict)
    logs: int = 0


@dataclass
class ProjectResult:
    project_id: int
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)
    mismatch_count: int = 0
    logs: int = 0
    owed_again: int = 0  # burned on chain, payout failed, to be paid again (base units)

    def differ(self, text: str) -> None:
        self.mismatch_count += 1
        if len(self.mismatches) < MAX_LISTED:
            self.mismatches.append(text)


@dataclass
class Result:
    projects: list[ProjectResult] = field(default_factory=list)

    @property
    def checked(self) -> int:
        return sum(p.checked for p in self.projects)

    @property
    def mismatches(self) -> int:
        return sum(p.mismatch_count for p in self.projects)

    def as_dict(self) -> dict:
        return {
            "checked": self.checked,
            "mismatches": self.mismatches,
            "projects": [
                {
                    "project_id": p.project_id,
                    "checked": p.checked,
                    "mismatches": p.mismatch_count,
                    "listed": p.mismatches,
                    "logs": p.logs,
                    "owed_again": p.owed_again,
                }
                for p in self.projects
            ],
        }


def verify(project_ids: list[int] | None = None) -> Result:
    query = select(ProjectChain).where(
        ProjectChain.status == DEPLOYED, ProjectChain.contract_kind == contracts.ENTITLEMENTS
    )
    if project_ids is not None:
        query = query.where(ProjectChain.project_id.in_(project_ids))
    result = Result()
    for pc in db.session.scalars(query.order_by(ProjectChain.project_id)).all():
        result.projects.append(verify_project(pc))
    return result


def verify_project(pc: ProjectChain) -> ProjectResult:
    found = ProjectResult(pc.project_id)
    ledger = read_chain(pc)
    found.logs = ledger.logs
    _totals(pc, ledger, found)
    _entitlements(pc, ledger, found)
    _vendors(pc, ledger, found)
    _settlements(pc, ledger, found)
    _cash_outs(pc, ledger, found)
    return found


def read_chain(pc: ProjectChain) -> ChainLedger:
    """Rebuild entitlements, vendor balances and settlements from the contract's logs."""
    start = db.session.scalar(select(ChainTx.block_number).where(ChainTx.id == pc.contract_tx_id))
    return read_logs(pc.contract_address, start or 0)


def read_logs(contract_address: str, start: int) -> ChainLedger:
    """The ledger of one entitlements contract (either version) from block ``start`` on."""
    w3 = client.web3()
    ledger = ChainLedger()
    latest = w3.eth.block_number
    step = max(int(current_app.config.get("CHAIN_LOG_BLOCK_RANGE", 5_000)), 1)
    address = Web3.to_checksum_address(contract_address)
    ent, vendors = ledger.entitlements, ledger.vendors
    for low in range(start, latest + 1, step):
        high = min(low + step - 1, latest)
        params = {
            "address": address,
            "fromBlock": hex(low),
            "toBlock": hex(high),
            "topics": [TOPICS],
        }
        for log in _get_logs(w3, params):
            ledger.logs += 1
            topics = [_hex(t) for t in log["topics"]]
            data = _hex(log["data"])
            kind = topics[0]
            if kind == TOPICS[0]:  # Allocated(beneficiary, amount)
                ent[_addr(topics[1])] += int(data, 16)
            elif kind == TOPICS[1]:  # Revoked(beneficiary, amount)
                ent[_addr(topics[1])] -= int(data, 16)
            elif kind == TOPICS[2]:  # Redeemed(id, beneficiary, vendor, amount)
                amount = int(data, 16)
                ent[_addr(topics[2])] -= amount
                vendors[_addr(topics[3])] += amount
            elif kind == TOPICS[3]:  # Settled(id, vendor, amount)
                amount = int(data, 16)
                vendors[_addr(topics[2])] -= amount
                ledger.settlements[topics[1]] = (_addr(topics[2]), amount)
            elif kind == TOPICS[4]:  # Imported(batch, account, vendor, amount)
                is_vendor = int(data[2:66], 16) != 0
                amount = int(data[66:130], 16)
                (vendors if is_vendor else ent)[_addr(topics[2])] += amount
    return ledger


def _get_logs(w3, params: dict) -> list:
    if client.is_embedded():
        # The in-process chain takes only web3's formatted request (and is small).
        formatted = {**params, "fromBlock": int(params["fromBlock"], 16)}
        formatted["toBlock"] = int(params["toBlock"], 16)
        return w3.eth.get_logs(formatted)
    # The raw JSON-RPC answer: web3's formatters cost more than the request for 100,000 logs.
    answer = w3.provider.make_request("eth_getLogs", [params])
    if "error" in answer:
        raise RuntimeError(f"eth_getLogs failed: {answer['error']}")
    return answer["result"]


def _hex(value) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


def _addr(topic: str) -> str:
    return Web3.to_checksum_address("0x" + topic[-40:])


def _totals(pc: ProjectChain, ledger: ChainLedger, found: ProjectResult) -> None:
    """The logs must add up to the contract's own totals, or a log went missing."""
    contract = contracts.of_project(pc)
    outstanding = contract.functions.outstanding().call()
    from_logs = sum(ledger.entitlements.values())
    found.checked += 1
    if outstanding != from_logs:
        found.differ(f"outstanding: contract {outstanding}, its event log adds up to {from_logs}")
    if pc.version >= 2:
        held = contract.functions.vendorHeld().call()
        found.checked += 1
        if held != sum(ledger.vendors.values()):
            found.differ(
                f"vendor balances: contract {held}, its event log adds up to "
                f"{sum(ledger.vendors.values())}"
            )


def _entitlements(pc: ProjectChain, ledger: ChainLedger, found: ProjectResult) -> None:
    settled_by_person = dict(
        db.session.execute(
            select(Redemption.beneficiary_id, func.sum(Redemption.amount))
            .where(
                Redemption.project_id == pc.project_id,
                Redemption.status == REDEMPTION_SETTLED,
            )
            .group_by(Redemption.beneficiary_id)
        ).all()
    )
    seen = set()
    rows = db.session.execute(
        select(
            Entitlement.beneficiary_id,
            Entitlement.address,
            Entitlement.allocated,
            Entitlement.revoked,
        ).where(Entitlement.project_id == pc.project_id)
    )
    on_chain = ledger.entitlements
    for beneficiary_id, address, allocated, revoked in rows:
        address = Web3.to_checksum_address(address)
        seen.add(address)
        expected = allocated - revoked - int(settled_by_person.get(beneficiary_id, 0))
        actual = on_chain.get(address, 0)
        found.checked += 1
        if actual != expected:
            found.differ(
                f"entitlement of beneficiary {beneficiary_id}: chain {actual}, database {expected}"
            )
    for address, amount in on_chain.items():
        if address not in seen and amount != 0:
            found.checked += 1
            found.differ(f"entitlement at {address}: chain {amount}, not in the database")


def _vendors(pc: ProjectChain, ledger: ChainLedger, found: ProjectResult) -> None:
    redeemed = dict(
        db.session.execute(
            select(Redemption.vendor_id, func.sum(Redemption.amount))
            .where(
                Redemption.project_id == pc.project_id,
                Redemption.status == REDEMPTION_SETTLED,
            )
            .group_by(Redemption.vendor_id)
        ).all()
    )
    burned = dict(
        db.session.execute(
            select(ChainSettlement.vendor_id, func.sum(ChainSettlement.amount))
            .where(ChainSettlement.project_id == pc.project_id, ChainSettlement.status == SETTLED)
            .group_by(ChainSettlement.vendor_id)
        ).all()
    )
    seen = set()
    for vendor_id in sorted(set(redeemed) | set(burned)):
        address = addresses.vendor_address(vendor_id)
        seen.add(address)
        expected = int(redeemed.get(vendor_id, 0)) - int(burned.get(vendor_id, 0))
        actual = ledger.vendors.get(address, 0)
        found.checked += 1
        if actual != expected:
            found.differ(f"balance of vendor {vendor_id}: chain {actual}, database {expected}")
    for address, amount in ledger.vendors.items():
        if address not in seen and amount != 0:
            found.checked += 1
            found.differ(f"vendor balance at {address}: chain {amount}, not in the database")


def _settlements(pc: ProjectChain, ledger: ChainLedger, found: ProjectResult) -> None:
    rows = db.session.execute(
        select(
            ChainSettlement.key,
            ChainSettlement.vendor_id,
            ChainSettlement.amount,
            ChainSettlement.status,
        ).where(ChainSettlement.project_id == pc.project_id)
    ).all()
    seen = set()
    for key, vendor_id, amount, status in rows:
        settle_id = addresses.settlement_key(key)
        seen.add(settle_id)
        on_chain = ledger.settlements.get(settle_id)
        found.checked += 1
        if status == SETTLED:
            expected = (addresses.vendor_address(vendor_id), amount)
            if on_chain != expected:
                found.differ(
                    f"settlement {key}: settled here ({amount} to vendor {vendor_id}), "
                    f"chain {'nothing' if on_chain is None else on_chain[1]}"
                )
        elif on_chain is not None:
            found.differ(f"settlement {key}: {status} here, settled on chain ({on_chain[1]})")
    for settle_id, (address, amount) in ledger.settlements.items():
        if settle_id not in seen:
            found.checked += 1
            found.differ(f"settlement {settle_id} on chain ({amount} to {address}), not here")


def _cash_outs(pc: ProjectChain, ledger: ChainLedger, found: ProjectResult) -> None:
    from portal.payouts.models import PAID as PAYOUT_PAID
    from portal.payouts.models import Payout
    from portal.settlements.models import PAID, PAYOUT_FAILED, RECONCILED, Settlement

    paid_tries = dict(
        db.session.execute(
            select(Payout.source_id, func.count())
            .where(
                Payout.project_id == pc.project_id,
                Payout.status == PAYOUT_PAID,
                or_(Payout.source_type == "settlement", Payout.source_type.like("settlement.%")),
            )
            .group_by(Payout.source_id)
        ).all()
    )
    rows = db.session.execute(
        select(
            Settlement.id,
            Settlement.chain_key,
            Settlement.vendor_id,
            Settlement.amount,
            Settlement.status,
            Settlement.burned,
        ).where(Settlement.project_id == pc.project_id)
    ).all()
    for settlement_id, key, vendor_id, amount, status, burned in rows:
        found.checked += 1
        on_chain = ledger.settlements.get(addresses.settlement_key(key)) if key else None
        what = f"cash-out {settlement_id} ({status})"
        if burned and on_chain != (addresses.vendor_address(vendor_id), amount):
            found.differ(
                f"{what}: burned here ({amount}), chain "
                f"{'nothing' if on_chain is None else on_chain[1]}"
            )
        elif not burned and on_chain is not None:
            found.differ(f"{what}: not burned here, settled on chain ({on_chain[1]})")
        paid = int(paid_tries.get(settlement_id, 0))
        if paid > 1:
            found.differ(f"{what}: paid {paid} times for one burn of {amount}")
        elif status in (PAID, RECONCILED) and paid != 1:
            found.differ(f"{what}: paid here, but no payout of it is paid")
        elif status == PAYOUT_FAILED:
            if paid:
                found.differ(f"{what}: payout failed here, but a payout of it is paid")
            found.owed_again += amount


def run_job(job) -> dict:
    """The ``chain.ledger_verify`` job: the staff page's check, kept as the job's result."""
    project_id = job.payload["project_id"]
    result = verify([project_id])
    return result.as_dict()

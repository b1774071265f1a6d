"""The chain step of a redemption and its outcome: send the redeem call once, then settle, or
fail and give the reservation back, when the chain answers (``events.chain_tx_final``)."""

from __future__ import annotations

from sqlalchemy import select, update

from portal.chain import addresses, contracts, setup, txmanager
from portal.chain.models import CONFIRMED as TX_CONFIRMED
from portal.chain.models import DEPLOYED, ChainTx
from portal.extensions import db
from portal.jobs.lifecycle import PermanentJobError
from portal.redemptions import services
from portal.redemptions.live import announce
from portal.redemptions.models import (
    ACCEPTED,
    FAILED,
    IN_FLIGHT,
    SETTLED,
    SUBMITTED,
    Redemption,
)
from portal.timeutil import utcnow
from portal.vendors.models import APPROVED, Vendor

REF = services.REF


def _signed_tx(redemption_id: int) -> ChainTx | None:
    """A transaction already signed for this redemption (one refused before signing has no
    nonce and does not count)."""
    return db.session.scalar(
        select(ChainTx)
        .where(ChainTx.ref_type == REF, ChainTx.ref_id == redemption_id, ChainTx.nonce.is_not(None))
        .order_by(ChainTx.id.desc())
        .limit(1)
    )


def transfer(redemption_id: int) -> str:
    """The ``redemptions.transfer`` job: send the redeem call once.

    The move to ``submitted`` (a conditional UPDATE, holding the row until this job commits) and
    the signed transaction commit together, and nothing is broadcast before: a suspension
    arriving meanwhile either cancels the redemption first or finds the transfer under way.
    """
    redemption = db.session.get(Redemption, redemption_id)
    if redemption is None:
        raise PermanentJobError("The redemption this job was for no longer exists.")
    if redemption.status not in IN_FLIGHT:
        return f"nothing to do: the redemption is {redemption.status}"
    signed = _signed_tx(redemption.id)
    if signed is not None:
        services.move(redemption.id, (ACCEPTED,), SUBMITTED, submitted_at=utcnow())
        db.session.execute(
            update(Redemption)
            .where(Redemption.id == redemption.id, Redemption.chain_tx_id.is_(None))
            .values(chain_tx_id=signed.id)
            .execution_options(synchronize_session=False)
        )
        # A worker may have died between the broadcast and sending the follow-up job.
        txmanager.ensure_follow_up(signed)
        return f"already sent as transaction {signed.id}"
    pc = setup.state(redemption.project_id)
    if pc is None or pc.status != DEPLOYED or pc.contract_kind != contracts.ENTITLEMENTS:
        fail(redemption.id, "The project has no deployed entitlements contract.")
        return "no contract"
    vendor = db.session.get(Vendor, redemption.vendor_id)
    if redemption.status == ACCEPTED and vendor.status != APPROVED:
        services.stop_for_vendor(vendor.id, "The vendor is no longer approved. Nothing was taken.")
        return "vendor no longer approved"
    key = addresses.redemption_key(redemption.id)
    contract = contracts.at(pc.contract_kind, pc.contract_address)
    if contract.functions.redemptionDone(key).call():
        # Mined before a crash but never recorded here: the chain is the truth.
        settle(redemption.id)
        return "found done on chain"
    if redemption.status == ACCEPTED and not services.move(
        redemption.id, (ACCEPTED,), SUBMITTED, submitted_at=utcnow()
    ):
        return f"nothing to do: the redemption is {services.reload(redemption.id).status}"
    held = services.entitlement(redemption.project_id, redemption.beneficiary_id)
    data = contracts.encode(
        pc.contract_kind,
        "redeem",
        key,
        held.address,
        addresses.vendor_address(vendor.id),
        redemption.amount,
    )
    announce(services.reload(redemption.id))
    try:
        tx = txmanager.submit(
            purpose="redeem",
            to=pc.contract_address,
            data=data,
            project_id=redemption.project_id,
            ref=(REF, redemption.id),
        )
    except txmanager.Reverted as exc:
        fail(redemption.id, f"Refused by the contract: {exc.reason}", exc.tx.id)
        return "refused by the contract"
    db.session.execute(
        update(Redemption)
        .where(Redemption.id == redemption.id, Redemption.chain_tx_id.is_(None))
        .values(chain_tx_id=tx.id)
        .execution_options(synchronize_session=False)
    )
    return f"sent as transaction {tx.id}"


def settle(redemption_id: int, tx_id: int | None = None) -> bool:
    now = utcnow()
    values = {"settled_at": now, "finished_at": now, "error": None}
    if tx_id is not None:
        values["chain_tx_id"] = tx_id
    if not services.move(redemption_id, IN_FLIGHT, SETTLED, **values):
        return False
    redemption = services.reload(redemption_id)
    services.record(
        redemption, "redemption.settled", f"Redemption {redemption_id} settled on chain"
    )
    announce(redemption)
    return True


def fail(redemption_id: int, error: str, tx_id: int | None = None) -> bool:
    """The transfer did not happen: mark it failed and give the reservation back (once)."""
    values = {"error": (error or "The transfer failed.")[:2000], "finished_at": utcnow()}
    if tx_id is not None:
        values["chain_tx_id"] = tx_id
    if not services.move(redemption_id, IN_FLIGHT, FAILED, **values):
        return False
    redemption = services.reload(redemption_id)
    services.give_back(redemption)
    services.record(
        redemption, "redemption.failed", f"Redemption {redemption_id} failed; amount given back"
    )
    announce(redemption)
    return True


def on_chain_final(tx: ChainTx) -> None:
    if tx.ref_type != REF or tx.ref_id is None:
        return
    redemption = db.session.get(Redemption, tx.ref_id)
    if redemption is None or redemption.chain_tx_id not in (None, tx.id):
        return
    if tx.status == TX_CONFIRMED:
        settle(redemption.id, tx.id)
    else:
        fail(redemption.id, tx.error or "The transfer failed on chain.", tx.id)


def unsettle(tx: ChainTx) -> bool:
    """The chain dropped the redeem transaction that settled this redemption: it is submitted
    again (the amount stays reserved) until the transaction, sent again, is mined anew."""
    if tx.ref_type != REF or tx.ref_id is None:
        return False
    moved = db.session.execute(
        update(Redemption)
        .where(
            Redemption.id == tx.ref_id,
            Redemption.status == SETTLED,
            Redemption.chain_tx_id == tx.id,
        )
        .values(status=SUBMITTED, settled_at=None, finished_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        return False
    redemption = services.reload(tx.ref_id)
    services.record(
        redemption,
        "redemption.unsettled",
        f"Redemption {tx.ref_id}: its transfer was dropped by a chain reorg; sent again",
    )
    announce(redemption)
    return True

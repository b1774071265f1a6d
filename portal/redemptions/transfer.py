"""The chain step of a redemption and its outcome: send the redeem call once, then settle, or
fail and give the reservation back, when the chain answers (``events.chain_tx_final``).

With ``REDEMPTION_SIGN_IN_REQUEST`` on, the redeem call is signed in the unit of work that
accepts the code (``sign_in_request``): the move to ``submitted``, the signed transaction and its
``chain.confirm`` follow-up job commit together with the reservation, the broadcast follows the
commit, and the follow-up is the only job hop. A web process that dies after the commit loses
nothing: the follow-up finds the stored transaction unknown to the node and sends it. Otherwise
(the default, see config.py), or when the chain cannot be reached from the request, the
``redemptions.transfer`` job (``transfer``) signs it, with its retries, and its worker thread
runs the ``chain.confirm`` follow-up itself right after the commit (the broadcast), waiting
``CHAIN_RECEIPT_WAIT_HERE_SECONDS`` for the receipt: on a node that mines at once the payment
is settled without a second trip through the queue. Either way the nonce is taken at the
commit (``portal.chain.txmanager``), so concurrent transfers do not queue on the signer's row
while they check, read the node and sign.
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select, update

from portal import request_load
from portal.chain import addresses, client, contracts, setup, signers, txmanager
from portal.chain import vendors as chain_vendors
from portal.chain.models import CONFIRMED as TX_CONFIRMED
from portal.chain.models import DEPLOYED, ChainTx
from portal.extensions import db
from portal.jobs.lifecycle import PermanentJobError
from portal.messages import notices
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

log = logging.getLogger(__name__)

REF = services.REF
# Added to the first gas estimate of a contract's redeem: later redemptions reuse the limit
# without asking the node. A vendor's first receipt and each new redemption id write storage
# slots that were empty (about 17,000 gas more than an update); unused gas is not paid for.
REDEEM_GAS_MARGIN = 60_000


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
    if redemption.status == ACCEPTED and not chain_vendors.registered(pc.project_id, vendor.id):
        # Version 2 pays registered vendors only: hold until the registration is final, which
        # sends this job again (portal/chain/vendors.py).
        chain_vendors.request(pc.project_id, vendor.id)
        return "waiting for the vendor's registration on chain"
    if contracts.read(contracts.contract_name(pc), pc.contract_address, "redemptionDone", key):
        # Mined before a crash but never recorded here: the chain is the truth.
        settle(redemption.id)
        return "found done on chain"
    if redemption.status == ACCEPTED and not services.move(
        redemption.id, (ACCEPTED,), SUBMITTED, submitted_at=utcnow()
    ):
        return f"nothing to do: the redemption is {services.reload(redemption.id).status}"
    announce(services.reload(redemption.id))
    return _sign(redemption, pc, vendor)


def _sign(redemption: Redemption, pc, vendor: Vendor) -> str:
    """Sign the redeem call of a ``submitted`` redemption in the caller's unit of work."""
    held = services.entitlement(redemption.project_id, redemption.beneficiary_id)
    data = contracts.encode(
        pc.contract_kind,
        "redeem",
        addresses.redemption_key(redemption.id),
        held.address,
        addresses.vendor_address(vendor.id),
        redemption.amount,
    )
    gas_key = ("redeem", pc.contract_address)
    known = client.known_gas_limit(gas_key)
    try:
        tx = txmanager.submit(
            purpose="redeem",
            to=pc.contract_address,
            data=data,
            project_id=redemption.project_id,
            ref=(REF, redemption.id),
            gas_limit=known,
            # The vendor is waiting: the transfer job's thread follows the receipt itself.
            follow_up_here=True,
        )
    except txmanager.Reverted as exc:
        fail(redemption.id, f"Refused by the contract: {exc.reason}", exc.tx.id)
        return "refused by the contract"
    if known is None:
        client.remember_gas_limit(gas_key, tx.gas_limit + REDEEM_GAS_MARGIN)
    db.session.execute(
        update(Redemption)
        .where(Redemption.id == redemption.id, Redemption.chain_tx_id.is_(None))
        .values(chain_tx_id=tx.id)
        .execution_options(synchronize_session=False)
    )
    return f"sent as transaction {tx.id}"


def signs_in_request() -> bool:
    """``REDEMPTION_SIGN_IN_REQUEST``: true, false, or "auto": where signing is cheap, on a
    JSON-RPC node. The embedded chain lives in one process; another process on the same
    database (a test's, a command's) holds a copy of its own that its workers never see."""
    setting = current_app.config["REDEMPTION_SIGN_IN_REQUEST"]
    if isinstance(setting, bool):
        return setting
    value = str(setting).strip().lower()
    if value == "auto":
        return signers.native_signing() and not client.is_embedded()
    return value in ("1", "true", "yes", "on")


def sign_in_request(redemption: Redemption, vendor: Vendor) -> bool:
    """Sign the transfer of a just-accepted redemption in the caller's unit of work.

    Nothing can have been sent for it yet (the code was accepted in this very transaction), so
    the job's checks of the chain are not needed. False, with nothing changed, when it cannot be
    done here (the setting is off, the chain is unreachable, the project or vendor is not in a
    state to pay): the caller then queues the transfer job, which decides with retries.
    """
    if not signs_in_request() or vendor.status != APPROVED or _chain_paused() or _crowded():
        return False
    pc = setup.state(redemption.project_id)
    if pc is None or pc.status != DEPLOYED or pc.contract_kind != contracts.ENTITLEMENTS:
        return False
    if not chain_vendors.registered(pc.project_id, vendor.id):
        return False
    try:
        with client.rpc_timeout(client.request_timeout()), db.session.begin_nested():
            if not services.move(redemption.id, (ACCEPTED,), SUBMITTED, submitted_at=utcnow()):
                raise _NotAccepted
            _sign(redemption, pc, vendor)
    except _NotAccepted:
        return False
    except Exception:  # the node down or slow, a refused nonce read: the job retries it
        log.warning(
            "redemption %s: signing in the request failed; queued", redemption.id, exc_info=True
        )
        return False
    return True


def _crowded() -> bool:
    """This process serves more requests at once than ``REDEMPTION_SIGN_IN_REQUEST_MAX_BUSY``:
    the signing and the broadcast would slow all of them, so the job's worker does it."""
    return request_load.in_flight() > current_app.config["REDEMPTION_SIGN_IN_REQUEST_MAX_BUSY"]


def _chain_paused() -> bool:
    """A node that just failed a request is left to the jobs for a while: each request would
    otherwise wait out the timeout again."""
    return client.failed_lately(current_app.config["CHAIN_REQUEST_PAUSE_SECONDS"])


class _NotAccepted(Exception):
    """The redemption left ``accepted`` under us: leave it to whoever moved it."""


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
    notices.receipt(redemption)
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

"""The vendor allow-list of version-2 project contracts (``registerVendor``).

A vendor assigned to a project is registered on its contract by a ``chain.vendor_sync`` job;
one removed from the project is unregistered (its balance stays and can still be settled).
The job compares what the database wants (the vendor_projects link) with what the contract
says (``isVendor``) and sends only the call that closes the gap, so it is safe to run any
number of times. Redemptions to a vendor not yet registered wait (``redemptions.transfer``
checks ``registered``) and are sent again when the registration is final.

A registration the chain keeps refusing (``MAX_TRIES`` transactions reverted or failed in a
row, or refused before signing) is given up: the row turns ``failed``, a chain alert tells
staff (transactions page, home page), and nothing is sent again until someone presses Retry
(``retry``), which starts the count afresh.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select, update

from portal import events
from portal.chain import addresses, alerts, contracts, setup, txmanager
from portal.chain.models import (
    CONFIRMED,
    DEPLOYED,
    FAILED,
    OPEN_STATUSES,
    REGISTERED,
    REGISTERING,
    REVERTED,
    ChainAlert,
    ChainTx,
    ChainVendor,
)
from portal.extensions import db
from portal.jobs import dispatch
from portal.transitions import insert_or_skip

REF = "chain_vendor"  # ChainTx.ref_type; ref_id is the vendor id, project_id the project
REMOVED = "removed"
GAVE_UP = "failed"  # refused MAX_TRIES times in a row: waits for a person's Retry
MAX_TRIES = 3


def _on_v2(project_id: int):
    pc = setup.state(project_id)
    if pc is None or pc.status != DEPLOYED or pc.version < 2:
        return None
    return pc


def assigned(project_id: int, vendor_id: int) -> bool:
    from portal.vendors.models import VendorProject

    found = db.session.scalar(
        select(VendorProject.id).where(
            VendorProject.project_id == project_id, VendorProject.vendor_id == vendor_id
        )
    )
    return found is not None


def registered(project_id: int, vendor_id: int) -> bool:
    """Whether redemptions to this vendor may be sent (always true on version 1)."""
    pc = setup.state(project_id)
    if pc is None or pc.version < 2:
        return True
    row = db.session.get(ChainVendor, (project_id, vendor_id))
    return row is not None and row.status == REGISTERED


def request(project_id: int, vendor_id: int) -> None:
    """Queue a sync unless one is under way (its transaction still open)."""
    if _on_v2(project_id) is None:
        return
    row = db.session.get(ChainVendor, (project_id, vendor_id))
    if row is not None and row.tx_id is not None:
        status = db.session.scalar(select(ChainTx.status).where(ChainTx.id == row.tx_id))
        if status in OPEN_STATUSES:
            return
    dispatch.enqueue(
        "chain.vendor_sync",
        {"project_id": project_id, "vendor_id": vendor_id},
        project_id=project_id,
    )


def sync_project(project_id: int) -> None:
    """Register every vendor of a project whose version-2 contract was just deployed."""
    from portal.vendors.models import VendorProject

    for vendor_id in db.session.scalars(
        select(VendorProject.vendor_id).where(VendorProject.project_id == project_id)
    ):
        request(project_id, vendor_id)


def sync(project_id: int, vendor_id: int) -> str:
    """The ``chain.vendor_sync`` job: make ``isVendor`` match the assignment."""
    pc = _on_v2(project_id)
    if pc is None:
        return "nothing to do: no version-2 contract"
    address = addresses.vendor_address(vendor_id)
    insert_or_skip(
        ChainVendor,
        {
            "project_id": project_id,
            "vendor_id": vendor_id,
            "address": address,
            "status": REGISTERING,
        },
    )
    row = db.session.get(ChainVendor, (project_id, vendor_id), populate_existing=True)
    if row.tx_id is not None:
        open_tx = db.session.get(ChainTx, row.tx_id)
        if open_tx is not None and open_tx.status in OPEN_STATUSES:
            txmanager.ensure_follow_up(open_tx)
            return f"waiting for transaction {open_tx.id}"
    want = assigned(project_id, vendor_id)
    on_chain = contracts.of_project(pc).functions.isVendor(address).call()
    if want == on_chain:
        _settle_row(row, REGISTERED if want else REMOVED)
        return "registered" if want else "not registered"
    last = db.session.get(ChainTx, row.tx_id) if row.tx_id is not None else None
    if want and last is not None and last.status in (REVERTED, FAILED):
        _count_failure(row, last.id, last.error or last.status)
    if want and row.status == GAVE_UP:
        return "registration given up: waiting for a person's Retry"
    function = "registerVendor" if want else "unregisterVendor"
    try:
        tx = txmanager.submit(
            purpose="vendor.register" if want else "vendor.unregister",
            to=pc.contract_address,
            data=contracts.encode(contracts.ENTITLEMENTS_V2, function, address),
            project_id=project_id,
            ref=(REF, vendor_id),
        )
    except txmanager.Reverted as exc:
        if not want:
            raise
        # Refused before signing: counted like a revert; the refused record is kept.
        _count_failure(row, None, exc.reason, refused=exc.tx)
        if row.status != GAVE_UP:
            request_later(project_id, vendor_id)
        return f"registerVendor refused: {exc.reason}"
    row.tx_id = tx.id
    row.status = REGISTERING if want else row.status
    return f"{function} sent as transaction {tx.id}"


def _count_failure(row: ChainVendor, tx_id: int | None, why: str, refused=None) -> None:
    """One more failed try, counted once per transaction (the UPDATE's WHERE: a repeated or
    concurrent sync finds the transaction already counted); the last try gives up."""
    same = (ChainVendor.tx_id == tx_id,) if tx_id is not None else ()
    counted = db.session.execute(
        update(ChainVendor)
        .where(
            ChainVendor.project_id == row.project_id,
            ChainVendor.vendor_id == row.vendor_id,
            *same,
        )
        .values(failures=ChainVendor.failures + 1, tx_id=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(row)
    if not counted or row.failures < MAX_TRIES:
        return
    gave_up = db.session.execute(
        update(ChainVendor)
        .where(
            ChainVendor.project_id == row.project_id,
            ChainVendor.vendor_id == row.vendor_id,
            ChainVendor.status == REGISTERING,
        )
        .values(status=GAVE_UP)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(row)
    if gave_up:
        tx = refused if tx_id is None else db.session.get(ChainTx, tx_id)
        alerts.raise_alert(
            alerts.VENDOR_REGISTRATION,
            f"Vendor {row.vendor_id} could not be registered on project {row.project_id}'s "
            f"contract after {row.failures} tries ({why[:300]}). Its payments wait; "
            "fix the cause, then press Retry.",
            tx=tx,
        )


def request_later(project_id: int, vendor_id: int) -> None:
    dispatch.enqueue(
        "chain.vendor_sync",
        {"project_id": project_id, "vendor_id": vendor_id},
        project_id=project_id,
        # A refusal before signing is looked at again after CHAIN_VENDOR_RETRY_SECONDS.
        delay_ms=current_app.config["CHAIN_VENDOR_RETRY_SECONDS"] * 1000,
    )


def given_up(project_id: int) -> list[ChainVendor]:
    return list(
        db.session.scalars(
            select(ChainVendor).where(
                ChainVendor.project_id == project_id, ChainVendor.status == GAVE_UP
            )
        )
    )


def alert_vendors(alert_list) -> dict[int, tuple[int, int]]:
    """``{alert id: (project id, vendor id)}`` for open registration alerts (for Retry)."""
    ids = [a.tx_id for a in alert_list if a.kind == alerts.VENDOR_REGISTRATION and a.tx_id]
    if not ids:
        return {}
    txs = dict(
        db.session.execute(
            select(ChainTx.id, ChainTx).where(ChainTx.id.in_(ids), ChainTx.ref_type == REF)
        ).all()
    )
    return {
        a.id: (txs[a.tx_id].project_id, txs[a.tx_id].ref_id)
        for a in alert_list
        if a.tx_id in txs and txs[a.tx_id].project_id is not None
    }


def retry(project_id: int, vendor_id: int) -> bool:
    """A person fixed the cause: try afresh (MAX_TRIES again) and close the alert. False when
    the registration was not given up (nothing to retry)."""
    again = db.session.execute(
        update(ChainVendor)
        .where(
            ChainVendor.project_id == project_id,
            ChainVendor.vendor_id == vendor_id,
            ChainVendor.status == GAVE_UP,
        )
        .values(status=REGISTERING, failures=0, tx_id=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not again:
        return False
    open_alerts = db.session.scalars(
        select(ChainAlert)
        .join(ChainTx, ChainTx.id == ChainAlert.tx_id)
        .where(
            ChainAlert.kind == alerts.VENDOR_REGISTRATION,
            ChainAlert.resolved_at.is_(None),
            ChainTx.ref_type == REF,
            ChainTx.ref_id == vendor_id,
            ChainTx.project_id == project_id,
        )
    ).all()
    for alert in open_alerts:
        alerts.resolve(alert.id, "registration retried")
    events.project_chain_changed.send(
        db.session.get(ChainVendor, (project_id, vendor_id), populate_existing=True),
        action="chain.vendor_retry",
        summary=f"Project {project_id}: registration of vendor {vendor_id} retried",
        project_id=project_id,
        data={"vendor_id": vendor_id},
    )
    request(project_id, vendor_id)
    return True


def _settle_row(row: ChainVendor, status: str) -> None:
    if row.status == status:
        return
    row.status = status
    events.project_chain_changed.send(
        row,
        action="chain.vendor_registered" if status == REGISTERED else "chain.vendor_unregistered",
        summary=f"Project {row.project_id}: vendor {row.vendor_id} {status} on chain",
        project_id=row.project_id,
        data={"vendor_id": row.vendor_id, "address": row.address},
    )
    if status == REGISTERED:
        _release_held(row.project_id, row.vendor_id)


def _release_held(project_id: int, vendor_id: int) -> None:
    """Send the transfers that waited for this registration."""
    from portal.jobs.kinds import REDEMPTION_TRANSFER
    from portal.redemptions.models import ACCEPTED, Redemption

    for redemption_id in db.session.scalars(
        select(Redemption.id).where(
            Redemption.project_id == project_id,
            Redemption.vendor_id == vendor_id,
            Redemption.status == ACCEPTED,
        )
    ):
        dispatch.enqueue(
            REDEMPTION_TRANSFER.name, {"redemption_id": redemption_id}, project_id=project_id
        )


def _on_final(tx: ChainTx, **_) -> None:
    if tx.ref_type != REF or tx.project_id is None:
        return
    # Whatever the outcome, a fresh look at the chain decides (a revert, a failure or a success).
    dispatch.enqueue(
        "chain.vendor_sync",
        {"project_id": tx.project_id, "vendor_id": tx.ref_id},
        project_id=tx.project_id,
    )


def _on_undone(tx: ChainTx, *, was: str, **_) -> None:
    if tx.ref_type != REF or tx.project_id is None or was != CONFIRMED:
        return
    row = db.session.get(ChainVendor, (tx.project_id, tx.ref_id))
    if row is not None and row.status == REGISTERED:
        row.status = REGISTERING
    _on_final(tx)


def _on_vendor_changed(vendor, *, action: str, project_id=None, **_) -> None:
    if action in ("vendor.assigned", "vendor.unassigned") and project_id is not None:
        request(project_id, vendor.id)


def connect() -> None:
    events.chain_tx_final.connect(_on_final, weak=False)
    events.chain_tx_undone.connect(_on_undone, weak=False)
    events.vendor_changed.connect(_on_vendor_changed, weak=False)

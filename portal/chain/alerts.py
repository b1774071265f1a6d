"""Chain alerts: what staff must see and act on (see ``ChainAlert``).

Raised loudly: a row the transactions page and the home page count, an audit entry (through
``events.chain_alert``) and an error in the log. ``open_alerts`` is what a health check or a
page reads; a flag stays up until someone resolves it.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, select, update

from portal import events
from portal.chain.models import ChainAlert, ChainTx
from portal.extensions import db
from portal.timeutil import utcnow

log = logging.getLogger(__name__)

DEEP_ROLLBACK = "deep_rollback"  # a final transaction's block is gone from the chain
NONCE_GAP = "nonce_gap"  # the node waits for a nonce nothing was going to send
FEE_CEILING = "fee_ceiling"  # a stuck transaction would need more than the ceiling
MISMATCH = "chain_mismatch"  # the chain and the database disagree on balances
VENDOR_REGISTRATION = "vendor_registration"  # a vendor's registration refused for good


def raise_alert(
    kind: str,
    message: str,
    *,
    tx: ChainTx | None = None,
    chain_id: int | None = None,
    block_number: int | None = None,
) -> ChainAlert:
    alert = ChainAlert(
        kind=kind,
        message=message[:4000],
        chain_id=chain_id if chain_id is not None else (tx.chain_id if tx else None),
        block_number=block_number,
        tx_id=tx.id if tx else None,
    )
    db.session.add(alert)
    db.session.flush()
    log.error("chain alert (%s): %s", kind, message)
    events.chain_alert.send(
        alert,
        action=f"chain.alert_{kind}",
        summary=message[:500],
        project_id=tx.project_id if tx else None,
        data={"tx_id": alert.tx_id, "block": block_number, "chain_id": alert.chain_id},
    )
    return alert


def open_alerts(limit: int = 50) -> list[ChainAlert]:
    return list(
        db.session.scalars(
            select(ChainAlert)
            .where(ChainAlert.resolved_at.is_(None))
            .order_by(ChainAlert.id.desc())
            .limit(limit)
        )
    )


def open_counts() -> dict[str, int]:
    """Open alerts by kind: the health-relevant flag (empty when all is well)."""
    rows = db.session.execute(
        select(ChainAlert.kind, func.count())
        .where(ChainAlert.resolved_at.is_(None))
        .group_by(ChainAlert.kind)
    ).all()
    return {kind: count for kind, count in rows}


def resolve(alert_id: int, reason: str = "") -> bool:
    """Close an open alert (a person looked into it); False if it was closed already."""
    alert = db.session.get(ChainAlert, alert_id)
    if alert is None:
        return False
    closed = db.session.execute(
        update(ChainAlert)
        .where(ChainAlert.id == alert_id, ChainAlert.resolved_at.is_(None))
        .values(resolved_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if closed != 1:
        return False
    tx = db.session.get(ChainTx, alert.tx_id) if alert.tx_id else None
    events.chain_alert_resolved.send(
        alert,
        action="chain.alert_resolved",
        summary=f"Chain alert {alert.id} ({alert.kind}) resolved"
        + (f": {reason[:300]}" if reason else ""),
        project_id=tx.project_id if tx else None,
        data={"kind": alert.kind, "tx_id": alert.tx_id},
    )
    return True

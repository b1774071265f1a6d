"""Money effects of chain transactions, applied to the database exactly once and undone exactly
once (see ``ChainEffect``).

``apply`` and ``undo`` answer whether this caller did it; only then does the caller change the
balances. Two jobs that reach the same effect at once (the batch job's "found done on chain"
path and a follow-up of the same batch, two follow-ups of one transaction) are ordered by the
unique key: the second waits for the first to commit and is then told it has nothing to do.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from portal.chain.models import ChainEffect
from portal.extensions import db
from portal.timeutil import utcnow
from portal.transitions import insert_or_skip

BATCH = "batch.confirmed"  # ref: disbursement batch id; amount: what its items credited
FUNDING = "funding"  # ref: funding id; amount: what was minted


def apply(kind: str, ref_id: int, *, tx_id: int | None = None, amount: int = 0) -> bool:
    """Record the effect; True if this call recorded it (and must now change the balances)."""
    values = {"kind": kind, "ref_id": ref_id, "tx_id": tx_id, "amount": amount}
    # RETURNING, not the row count: drivers report -1 for an INSERT ... ON CONFLICT DO NOTHING.
    made = insert_or_skip(ChainEffect, {**values, "created_at": utcnow()}, ChainEffect.id)
    return made is not None


def undo(kind: str, ref_id: int):
    """Forget the effect; the row removed (``tx_id``, ``amount``) if this call removed it (and
    must reverse it), else None."""
    row = db.session.execute(
        delete(ChainEffect)
        .where(ChainEffect.kind == kind, ChainEffect.ref_id == ref_id)
        .returning(ChainEffect.id, ChainEffect.tx_id, ChainEffect.amount)
        .execution_options(synchronize_session=False)
    ).first()
    return row


def applied(kind: str, ref_id: int) -> bool:
    found = db.session.scalar(
        select(ChainEffect.id).where(ChainEffect.kind == kind, ChainEffect.ref_id == ref_id)
    )
    return found is not None


SETTLEMENT = "settlement"  # ref: chain settlement id; amount: what was burned

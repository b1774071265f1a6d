"""Where the chain joins the reconciliation view: a payout made for a settlement shows the
settlement's chain transaction beside it (settlements on chain ↔ payouts ↔ statement lines).

Settlements record their ``settle`` transaction as a ``ChainTx`` with ``ref_type``
"settlement" and ``ref_id`` the settlement's id; a payout made for one carries the same pair as
its source. Until settlements exist no payout has such a source, and the column shows "—".
"""

from __future__ import annotations

from sqlalchemy import select

from portal.chain.models import ChainTx
from portal.extensions import db

SETTLEMENT = "settlement"


def chain_side(payouts) -> dict[int, ChainTx]:
    """The newest chain transaction of each payout's settlement, by payout id."""
    by_source = {p.source_id: p.id for p in payouts if p.source_type == SETTLEMENT and p.source_id}
    if not by_source:
        return {}
    found: dict[int, ChainTx] = {}
    rows = db.session.scalars(
        select(ChainTx)
        .where(ChainTx.ref_type == SETTLEMENT, ChainTx.ref_id.in_(list(by_source)))
        .order_by(ChainTx.id)
    )
    for tx in rows:
        found[by_source[tx.ref_id]] = tx
    return found

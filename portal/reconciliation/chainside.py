"""Where the chain joins the reconciliation view: a payout made for a settlement shows the
settlement's chain transaction beside it (settlements on chain ↔ payouts ↔ statement lines).

A payout made for a settlement carries ``source_type`` "settlement" (or "settlement.<n>" for
the n-th try after a failed payout) and the settlement's id. The settlement's ``chain_key`` is
the key of its ``ChainSettlement``, whose ``tx_id`` is the newest ``settle`` transaction.
"""

from __future__ import annotations

from sqlalchemy import select

from portal.chain.models import ChainSettlement, ChainTx
from portal.extensions import db

SETTLEMENT = "settlement"


def _of_settlement(payout) -> bool:
    source = payout.source_type or ""
    return bool(payout.source_id) and (source == SETTLEMENT or source.startswith(SETTLEMENT + "."))


def chain_side(payouts) -> dict[int, ChainTx]:
    """The newest chain transaction of each payout's settlement, by payout id."""
    from portal.settlements.models import Settlement

    by_source: dict[int, list[int]] = {}
    for p in payouts:
        if _of_settlement(p):
            by_source.setdefault(p.source_id, []).append(p.id)
    if not by_source:
        return {}
    rows = db.session.execute(
        select(Settlement.id, ChainTx)
        .join(ChainSettlement, ChainSettlement.key == Settlement.chain_key)
        .join(ChainTx, ChainTx.id == ChainSettlement.tx_id)
        .where(Settlement.id.in_(list(by_source)))
    )
    found: dict[int, ChainTx] = {}
    for settlement_id, tx in rows:
        for payout_id in by_source[settlement_id]:
            found[payout_id] = tx
    return found

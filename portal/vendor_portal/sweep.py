"""The sweeper's part for vendor payments: what pages no longer write when they are viewed."""

from __future__ import annotations

from portal.extensions import db
from portal.quotas import services as quotas
from portal.redemptions import services as redemptions


def sweep() -> tuple[int, int]:
    """Write down expired codes (pages already show them expired) and drop limit counts that no
    longer count. Returns (redemptions expired, counts deleted)."""
    expired = redemptions.expire_due()
    purged = quotas.purge()
    db.session.commit()
    return expired, purged

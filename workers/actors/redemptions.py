"""Redemption jobs: the on-chain transfer of an accepted redemption to the vendor."""

from __future__ import annotations

from portal.jobs.kinds import REDEMPTION_TRANSFER
from portal.redemptions import transfer as redemption_transfer
from workers.actors import handles


@handles(REDEMPTION_TRANSFER.name)
def transfer(job) -> dict:
    redemption_id = job.payload.get("redemption_id")
    return {"redemption_id": redemption_id, "step": redemption_transfer.transfer(redemption_id)}

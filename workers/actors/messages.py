"""Messages to beneficiaries that follow an effect: the allocation notices of a credited batch."""

from __future__ import annotations

from portal.jobs.kinds import MESSAGES_ALLOCATION
from portal.messages import notices
from workers.actors import handles


@handles(MESSAGES_ALLOCATION.name)
def allocation_notices(job) -> dict:
    batch_id = job.payload.get("batch_id")
    return {"batch_id": batch_id, "queued": notices.allocation_notices(batch_id)}

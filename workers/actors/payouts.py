"""Payout jobs: send a mobile-money payout, and ask the provider how one ended."""

from __future__ import annotations

from portal.jobs.kinds import PAYOUT_CHECK, PAYOUT_SEND
from portal.payouts import sending
from workers.actors import handles


@handles(PAYOUT_SEND.name)
def send_payout(job) -> dict:
    payout_id = job.payload.get("payout_id")
    return {"payout_id": payout_id, "answer": sending.send(payout_id)}


@handles(PAYOUT_CHECK.name)
def check_payout(job) -> dict:
    payout_id = job.payload.get("payout_id")
    after_failure = bool(job.payload.get("after_failure"))
    return {"payout_id": payout_id, "found": sending.check(payout_id, after_failure)}

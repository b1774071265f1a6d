"""Communication jobs: one SMS, email or WhatsApp message through the configured provider, and
the start of a campaign (its messages made and queued)."""

from __future__ import annotations

from portal.campaigns import sending as campaigns
from portal.comms import services as comms
from portal.jobs.kinds import (
    CAMPAIGN_SMS,
    CAMPAIGN_START,
    CAMPAIGN_WATCH,
    CAMPAIGN_WHATSAPP,
    COMMS_EMAIL,
    COMMS_SMS,
    COMMS_WHATSAPP,
)
from workers.actors import handles


def _deliver(job) -> dict:
    message_id = job.payload.get("message_id")
    step = comms.deliver(message_id, claim=job.attempts, last_try=job.attempts >= job.max_attempts)
    return {"message_id": message_id, "step": step}


for _kind in (COMMS_SMS, COMMS_EMAIL, COMMS_WHATSAPP, CAMPAIGN_SMS, CAMPAIGN_WHATSAPP):
    handles(_kind.name)(_deliver)


@handles(CAMPAIGN_START.name)
def start_campaign(job) -> dict:
    campaign_id = job.payload.get("campaign_id")
    return {"campaign_id": campaign_id, "step": campaigns.start(campaign_id)}


@handles(CAMPAIGN_WATCH.name)
def watch_campaign(job) -> dict:
    campaign_id = job.payload.get("campaign_id")
    return {"campaign_id": campaign_id, "step": campaigns.watch(campaign_id)}

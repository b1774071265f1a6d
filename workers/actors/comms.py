"""Communication jobs: one SMS or one email through the configured provider."""

from __future__ import annotations

from portal.comms import services as comms
from portal.jobs.kinds import COMMS_EMAIL, COMMS_SMS
from workers.actors import handles


@handles(COMMS_SMS.name)
def send_sms(job) -> dict:
    message_id = job.payload.get("message_id")
    return {"message_id": message_id, "step": comms.deliver(message_id)}


@handles(COMMS_EMAIL.name)
def send_email(job) -> dict:
    message_id = job.payload.get("message_id")
    return {"message_id": message_id, "step": comms.deliver(message_id)}

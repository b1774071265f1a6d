"""Settling the messages "to check" (review): a send was interrupted and the provider may or may
not have the message, so it is never sent again by itself. Staff check with the provider, then
mark it delivered or not sent; not sent puts it back in the queue with a new job.

Each message moves by one conditional UPDATE from review, so two staff (or a double click, or a
receipt arriving meanwhile) settle it once: only the call that moved it queues a job, and a
message queued again is sent once. Every call is audited with the message ids and the count,
never a number or a text.
"""

from __future__ import annotations

from sqlalchemy import Select, select

from portal.audit import services as audit
from portal.comms import delivery
from portal.comms.models import DELIVERED, EMAIL, QUEUED, REVIEW, WHATSAPP, OutboxMessage
from portal.extensions import db
from portal.jobs import dispatch
from portal.jobs.kinds import (
    CAMPAIGN_SMS,
    CAMPAIGN_WHATSAPP,
    COMMS_EMAIL,
    COMMS_SMS,
    COMMS_WHATSAPP,
)
from portal.jobs.models import Job

# What staff found at the provider: the message reached the phone, or it never left.
WAS_DELIVERED, NOT_SENT = "delivered", "not_sent"
OUTCOMES = (WAS_DELIVERED, NOT_SENT)
# At most this many messages are settled by one click on a filtered selection.
MOST_AT_ONCE = 1000


def job_kind(message: OutboxMessage) -> str:
    """The job that sends the message again: the kind its first job was, else by channel."""
    if message.job_id:
        kind = db.session.scalar(select(Job.kind).where(Job.id == message.job_id))
        if kind:
            return kind
    if message.campaign_id is not None:
        return (CAMPAIGN_WHATSAPP if message.channel == WHATSAPP else CAMPAIGN_SMS).name
    if message.channel == EMAIL:
        return COMMS_EMAIL.name
    if message.channel == WHATSAPP:
        return COMMS_WHATSAPP.name
    return COMMS_SMS.name


def settle_one(message_id: int, outcome: str) -> bool:
    """Move one message out of review as ``outcome``; True if this call moved it (and, for
    not sent, queued its one new job)."""
    if outcome == WAS_DELIVERED:
        return delivery.move(message_id, DELIVERED, from_states=(REVIEW,), error=None) is not None
    if outcome != NOT_SENT:
        raise ValueError(outcome)
    # recorded_claim 0: the new job's first claim is not taken for an interrupted one.
    if not delivery.move(
        message_id, QUEUED, from_states=(REVIEW,), error=None, error_code=None, recorded_claim=0
    ):
        return False
    message = db.session.get(OutboxMessage, message_id, populate_existing=True)
    job = dispatch.enqueue(
        job_kind(message), {"message_id": message.id}, project_id=message.project_id
    )
    message.job_id = job.id
    return True


def settle(query: Select, outcome: str, *, limit: int = MOST_AT_ONCE) -> list[int]:
    """Settle the messages in review that ``query`` (a select of OutboxMessage, already scoped
    to what the user sees and filtered) finds, oldest first; the ids this call moved."""
    ids = list(
        db.session.scalars(
            query.where(OutboxMessage.status == REVIEW)
            .with_only_columns(OutboxMessage.id)
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
    )
    moved = [message_id for message_id in ids if settle_one(message_id, outcome)]
    if moved:
        _audit(moved, outcome)
    return moved


def _audit(moved: list[int], outcome: str) -> None:
    rows = db.session.execute(
        select(OutboxMessage.project_id, OutboxMessage.campaign_id).where(
            OutboxMessage.id.in_(moved)
        )
    ).all()
    projects = {row.project_id for row in rows}
    campaigns = sorted({row.campaign_id for row in rows if row.campaign_id})
    what = "delivered" if outcome == WAS_DELIVERED else "not sent, queued again"
    one = len(moved) == 1
    audit.record(
        "message.review_delivered" if outcome == WAS_DELIVERED else "message.review_requeued",
        f"Message {moved[0]} marked {what} after a check with the provider"
        if one
        else f"{len(moved)} messages marked {what} after a check with the provider",
        target_type="outbox_message" if one else None,
        target_id=moved[0] if one else None,
        project_id=projects.pop() if len(projects) == 1 else None,
        data={
            "outcome": outcome,
            "count": len(moved),
            "message_ids": moved[:200],
            "campaign_ids": campaigns,
        },
    )

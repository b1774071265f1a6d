"""The delivery log's state machine: queued → sent → delivered | failed, one conditional UPDATE
per move, so a receipt and the sending job (or two copies of one receipt) arriving together
move a message once, and never backwards (a late "sent" receipt after "delivered" is a no-op).

A move of a campaign's message is announced on the campaign's live room as a delta (from, to):
the page adjusts its counts, and its snapshot on (re)subscribe gives the true ones.
"""

from __future__ import annotations

from sqlalchemy import select

from portal import realtime
from portal.comms.models import (
    CANCELLED,
    DELIVERED,
    FAILED,
    HELD,
    OPTED_OUT,
    QUEUED,
    REVIEW,
    SENT,
    OutboxMessage,
)
from portal.extensions import db
from portal.timeutil import utcnow
from portal.transitions import change

CAMPAIGN_PROGRESS = "campaign.progress"
# Which states each state may be reached from. A receipt may come before the sending job has
# recorded its own answer (the message is still queued then), and may settle a message whose
# send was interrupted (review).
# A cancelled campaign's message whose job was already talking to the provider went out: the
# provider's word wins over the cancel.
ALLOWED_FROM = {
    SENT: (QUEUED, REVIEW, CANCELLED),
    DELIVERED: (QUEUED, SENT, REVIEW, CANCELLED),
    FAILED: (QUEUED, SENT, REVIEW, CANCELLED),
    REVIEW: (QUEUED,),
    HELD: (QUEUED,),
    QUEUED: (HELD,),
    CANCELLED: (QUEUED, HELD),
    OPTED_OUT: (QUEUED, HELD),
}


def campaign_room(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def move(message_id: int, to_state: str, *, from_states=None, known=None, **values) -> str | None:
    """Move the message to ``to_state`` (with ``values``) if its current state allows it (and
    is one of ``from_states``, when given); the state it left if this call moved it, else None.

    ``known``: the message's (status, campaign id) as the caller just read them, which saves
    reading them again; if another writer moved it since, the conditional UPDATE finds
    nothing and the move reads the row as usual."""
    allowed = tuple(from_states) if from_states is not None else ALLOWED_FROM[to_state]
    now = utcnow()
    values.setdefault("status_at", now)
    if to_state == DELIVERED:
        values.setdefault("delivered_at", now)
    for _ in range(3):
        if known is not None:
            status, campaign_id = known
            known = None
        else:
            found = db.session.execute(
                select(OutboxMessage.status, OutboxMessage.campaign_id).where(
                    OutboxMessage.id == message_id
                )
            ).first()
            if found is None:
                return None
            status, campaign_id = found
        if status not in allowed:
            return None
        if change(OutboxMessage, message_id, (status,), to_state, **values):
            if campaign_id is not None:
                realtime.emit_after_commit(
                    CAMPAIGN_PROGRESS,
                    {"campaign_id": campaign_id, "from": status, "to": to_state},
                    [campaign_room(campaign_id)],
                )
            return status
        # Another writer moved it between the read and the update: look again.
    return None

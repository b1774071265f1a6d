"""Payout statuses on staff pages as they change: the event, its rooms and the topic.

A page names the topic ``payouts``; the server joins it to the rooms of the projects the user
sees (or the room of all payouts for a user who sees every project) and answers with the
current counts, so a page that reconnects catches up.
"""

from __future__ import annotations

from portal import realtime
from portal.extensions import db
from portal.payouts.models import Payout
from portal.projects.services import visible_project_ids

PAYOUT_UPDATED = "payout.updated"
ALL_ROOM = "payouts:all"


def project_room(project_id: int) -> str:
    return f"payouts:project:{project_id}"


def serialize(payout: Payout) -> dict:
    return {
        "id": payout.id,
        "project_id": payout.project_id,
        "status": payout.status,
        "books": payout.books or "",
        "failure_reason": payout.failure_reason or "",
    }


def emit(payout: Payout) -> None:
    """Announce the payout's state once the transaction that set it commits."""
    realtime.emit_after_commit(
        PAYOUT_UPDATED, serialize(payout), [ALL_ROOM, project_room(payout.project_id)]
    )


@realtime.topic("payouts", "payout.read")
def payouts_topic(user, params: dict):
    from portal.payouts import services

    ids = visible_project_ids(user)
    rooms = [ALL_ROOM] if ids is None else [project_room(pid) for pid in sorted(ids)]
    recent = db.session.scalars(services.visible(user).order_by(Payout.id.desc()).limit(200))
    return rooms, {
        "counts": services.status_counts(user),
        "payouts": [serialize(p) for p in recent],
    }

"""Grievance lists and pages as they change: the event, its rooms and the topic.

The event carries ids and workflow fields only (no description, no note, no name); the
server picks the rooms from the projects the user sees, as for payouts.
"""

from __future__ import annotations

from portal import realtime
from portal.grievances.models import Grievance

GRIEVANCE_UPDATED = "grievance.updated"
ALL_ROOM = "grievances:all"


def project_room(project_id: int) -> str:
    return f"grievances:project:{project_id}"


def serialize(grievance: Grievance) -> dict:
    return {
        "id": grievance.id,
        "ref": grievance.ref,
        "project_id": grievance.project_id,
        "status": grievance.status,
        "type": grievance.type,
        "priority": grievance.priority,
        "assignee_id": grievance.assignee_id,
        "due_on": grievance.due_on.isoformat() if grievance.due_on else None,
    }


def announce(grievance: Grievance) -> None:
    """Emit the grievance's state once the transaction that changed it commits."""
    rooms = [ALL_ROOM]
    if grievance.project_id is not None:
        rooms.append(project_room(grievance.project_id))
    realtime.emit_after_commit(GRIEVANCE_UPDATED, serialize(grievance), rooms)


@realtime.topic("grievances", "grievances.read")
def grievances_topic(user, params: dict):
    """Rooms of the projects the user sees (all grievances for a user who sees every project,
    including those of people in no project); the snapshot is the newest visible ones."""
    from portal.extensions import db
    from portal.grievances import services
    from portal.projects.services import visible_project_ids

    ids = visible_project_ids(user)
    rooms = [ALL_ROOM] if ids is None else [project_room(pid) for pid in sorted(ids)]
    recent = db.session.scalars(services.visible(user).order_by(Grievance.id.desc()).limit(200))
    return rooms, {"grievances": [serialize(g) for g in recent]}

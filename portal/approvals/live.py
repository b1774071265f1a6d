"""Live approvals: one event that says a request changed, to the rooms of its project.

The event carries no description or amount, only which request changed and to what; each page
asks the server for what the signed-in user should see now (their count, their list), so a
person never learns from a broadcast what their permissions would not show them.
"""

from __future__ import annotations

from portal import realtime

CHANGED = "approval.changed"
ALL_PROJECTS_ROOM = "approvals:all"


def project_room(project_id: int) -> str:
    return f"approvals:project:{project_id}"


def payload(request) -> dict:
    return {
        "id": request.id,
        "project_id": request.project_id,
        "kind": request.kind,
        "subject_id": request.subject_id,
        "status": request.status,
        "approvals": request.approvals,
        "approvals_needed": request.approvals_needed,
        "requested_by_id": request.requested_by_id,
    }


def announce(request) -> None:
    rooms = [project_room(request.project_id), ALL_PROJECTS_ROOM]
    if request.requested_by_id:
        rooms.append(realtime.user_room(request.requested_by_id))
    realtime.emit_after_commit(CHANGED, payload(request), rooms)


@realtime.topic("approvals", "project.read")
def approvals_topic(user, params: dict):
    """Rooms of every project the user sees; the snapshot is what waits for them now."""
    from portal.approvals import services
    from portal.projects import services as projects

    ids = projects.visible_project_ids(user)
    rooms = [ALL_PROJECTS_ROOM] if ids is None else [project_room(i) for i in sorted(ids)]
    return rooms, {"waiting": services.waiting_count(user)}

"""Import progress over Socket.IO: phase and percent to the batch's room and its owner."""

from __future__ import annotations

from portal import realtime
from portal.imports.models import ImportBatch

IMPORT_PROGRESS = "import.progress"


def batch_room(batch_id: int) -> str:
    return f"import:{batch_id}"


def serialize(batch: ImportBatch) -> dict:
    return {
        "id": batch.id,
        "status": batch.status,
        "total": batch.total_rows,
        "new": batch.new_rows,
        "duplicates": batch.duplicate_rows,
        "invalid": batch.invalid_rows,
        "imported": batch.imported_rows,
        "message": batch.message,
        "job_id": batch.job_id,
    }


def progress_reporter(batch: ImportBatch):
    """A callback for the pipeline: emits at once (the pipeline throttles), outside any commit."""
    rooms = [batch_room(batch.id)]
    if batch.created_by_id:
        rooms.append(realtime.user_room(batch.created_by_id))

    def report(phase: str, done: int, total: int) -> None:
        percent = None if not total else min(100, round(done * 100 / total))
        realtime.emit(
            IMPORT_PROGRESS,
            {"id": batch.id, "phase": phase, "rows": done, "total": total, "percent": percent},
            rooms,
        )

    return report


def announce(batch: ImportBatch) -> None:
    """The batch's new state, once its transaction commits."""
    rooms = [batch_room(batch.id)]
    if batch.created_by_id:
        rooms.append(realtime.user_room(batch.created_by_id))
    realtime.emit_after_commit(IMPORT_PROGRESS, {**serialize(batch), "phase": batch.status}, rooms)


@realtime.topic("import", "beneficiary.manage")
def import_topic(user, params: dict):
    from portal.imports.services import get_visible

    batch = get_visible(user, realtime.id_param(params, "id"))
    return [batch_room(batch.id)], {"batch": serialize(batch)}

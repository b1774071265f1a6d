"""Card jobs: the printable PDF of a group's beneficiary cards."""

from __future__ import annotations

from portal import realtime
from portal.cards import services as cards
from portal.cards.models import CardPrint
from portal.errors import NotFound
from portal.extensions import db
from portal.jobs.kinds import CARDS_PDF
from portal.jobs.lifecycle import PermanentJobError
from portal.jobs.live import job_room
from workers.actors import handles


@handles(CARDS_PDF.name)
def make_cards(job) -> dict:
    sheet = db.session.get(CardPrint, job.payload.get("print_id"))
    if sheet is None:
        raise PermanentJobError("The card print this job was for no longer exists.")
    rooms = [job_room(job.id)]
    if sheet.requested_by_id:
        rooms.append(realtime.user_room(sheet.requested_by_id))
    last: list[tuple[int, str]] = [(-1, "")]

    def progress(done: int, total: int, phase: str) -> None:
        percent = done * 100 // total if total else 100
        if last[0] == (percent, phase):
            return  # at most one event per percent and phase
        last[0] = (percent, phase)
        realtime.emit(
            cards.PROGRESS_EVENT,
            {
                "job_id": job.id,
                "print_id": sheet.id,
                "group_id": sheet.group_id,
                "phase": phase,
                "done": done,
                "total": total,
                "percent": percent,
            },
            rooms,
        )

    try:
        cards.print_group(sheet, progress)
    except NotFound as exc:
        raise PermanentJobError(str(exc)) from exc
    return {
        "print_id": sheet.id,
        "group_id": sheet.group_id,
        "cards": sheet.cards_count,
        "pages": sheet.pages,
        "with_names": sheet.with_names,
        "download": f"/cards/prints/{sheet.id}.pdf",
    }

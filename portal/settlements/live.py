"""Settlement statuses as they change: on the vendor's phone (the vendor's own room) and on the
staff pages (the project's settlements room, or all of them for someone who sees every project).
The event carries the status and plain label only; pages read the rest themselves."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from portal import realtime
from portal.extensions import db
from portal.projects.services import visible_project_ids
from portal.settlements.models import (
    FINAL,
    LABELS,
    PAYOUT_FAILED,
    STAFF_LABELS,
    TONES,
    Settlement,
)

SETTLEMENT_UPDATED = "settlement.updated"
ALL_ROOM = "settlements:all"


def project_room(project_id: int) -> str:
    return f"settlements:project:{project_id}"


# What a failed payout means, for the vendor and for staff, by the note's code; the pages'
# scripts hold the same sentences in their language (``portal.i18n.js_strings``) and fill in
# the amount as the page writes it, since a worker pushing the change has no page language.
NOTE_AGAIN, NOTE_AGAIN_WAITING = "again", "again_waiting"
VENDOR_NOTES = {
    NOTE_AGAIN: _l("%(amount)s will be paid again"),
    NOTE_AGAIN_WAITING: _l(
        "%(amount)s will be paid again to the account you chose, once it is approved"
    ),
}
STAFF_NOTES = {
    NOTE_AGAIN: _l("%(amount)s owed to the vendor: pay it again"),
    NOTE_AGAIN_WAITING: _l(
        "%(amount)s owed to the vendor: paying it again to another account waits for approval"
    ),
}


def note_code(row: Settlement) -> str:
    if row.status != PAYOUT_FAILED:
        return ""
    return NOTE_AGAIN_WAITING if row.repay_approval_id is not None else NOTE_AGAIN


def notes(row: Settlement) -> tuple[str, str]:
    """What a failed payout means, in plain words and the current language: for the vendor,
    and for staff."""
    code = note_code(row)
    if not code:
        return "", ""
    from portal.settlements.services import money

    amount = money(row.project_id, row.amount)
    return (
        _vendor(code, amount),
        _staff(code, amount),
    )


def _vendor(code: str, amount: str) -> str:
    return str(VENDOR_NOTES[code]) % {"amount": amount}


def _staff(code: str, amount: str) -> str:
    return str(STAFF_NOTES[code]) % {"amount": amount}


def serialize(row: Settlement) -> dict:
    note, staff_note = notes(row)
    from portal.settlements.services import money

    return {
        "id": row.id,
        "project_id": row.project_id,
        "status": row.status,
        "label": str(LABELS.get(row.status, row.status)),
        "staff_label": str(STAFF_LABELS.get(row.status, row.status)),
        "tone": TONES.get(row.status, "pending"),
        "final": row.status in FINAL,
        "note": note,
        "staff_note": staff_note,
        "note_code": note_code(row),
        # The amount as a worker writes it, for a page that does not show it (only with a note).
        "amount": money(row.project_id, row.amount) if note else "",
        "repay_waiting": row.repay_approval_id is not None,
    }


def emit(row: Settlement) -> None:
    realtime.emit_after_commit(
        SETTLEMENT_UPDATED,
        serialize(row),
        [realtime.vendor_room(row.vendor_id), ALL_ROOM, project_room(row.project_id)],
    )


@realtime.topic("settlements", "settlement.read")
def settlements_topic(user, params: dict):
    ids = visible_project_ids(user)
    rooms = [ALL_ROOM] if ids is None else [project_room(pid) for pid in sorted(ids)]
    query = db.select(Settlement).order_by(Settlement.id.desc()).limit(200)
    if ids is not None:
        query = query.where(Settlement.project_id.in_(ids or [-1]))
    return rooms, {"settlements": [serialize(s) for s in db.session.scalars(query)]}


@realtime.vendor_topic("cash-outs")
def vendor_settlements_topic(vendor, params: dict):
    rows = db.session.scalars(
        db.select(Settlement)
        .where(Settlement.vendor_id == vendor.id)
        .order_by(Settlement.id.desc())
        .limit(50)
    )
    return [realtime.vendor_room(vendor.id)], {"settlements": [serialize(s) for s in rows]}

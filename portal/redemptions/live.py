"""What a redemption looks like on the wire and to the vendor, and who hears about it."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal import realtime
from portal.chain.models import ProjectChain
from portal.extensions import db
from portal.ledger.display import money  # the project's currency, as on every page
from portal.redemptions.codes import AWAITING, EXPIRED, LOCKED
from portal.redemptions.models import (
    ACCEPTED,
    CANCELLED,
    FAILED,
    FINAL,
    SETTLED,
    SUBMITTED,
    Redemption,
    effective_status,
)

REDEMPTION_UPDATED = "redemption.updated"

# What the vendor reads: "pending" until the chain confirms, then "confirmed".
LABELS = {
    AWAITING: _l("Waiting for the code"),
    ACCEPTED: _l("Pending"),
    SUBMITTED: _l("Pending"),
    SETTLED: _l("Confirmed"),
    FAILED: _l("Failed"),
    CANCELLED: _l("Cancelled"),
    EXPIRED: _l("Code expired"),
    LOCKED: _l("Too many wrong codes"),
}
TONES = {
    AWAITING: "queued",
    ACCEPTED: "running",
    SUBMITTED: "running",
    SETTLED: "succeeded",
    FAILED: "failed",
    CANCELLED: "cancelled",
    EXPIRED: "cancelled",
    LOCKED: "failed",
}
# Vendors see why in words that carry no chain detail; staff see the stored error.
VENDOR_NOTES = {
    FAILED: _l("The transfer did not go through. Nothing was taken from the beneficiary."),
    EXPIRED: _l("The code was not entered in time. Nothing was taken."),
    LOCKED: _l("The code was entered wrong too many times. Nothing was taken."),
}


def label(status: str) -> str:
    return str(LABELS.get(status, status))


def vendor_note(redemption: Redemption) -> str:
    status = effective_status(redemption)
    if status == CANCELLED:
        return redemption.error or _("Cancelled. Nothing was taken.")
    return str(VENDOR_NOTES.get(status, ""))


def serialize(redemption: Redemption) -> dict:
    pc = db.session.get(ProjectChain, redemption.project_id)
    status = effective_status(redemption)
    return {
        "id": redemption.id,
        "project_id": redemption.project_id,
        "vendor_id": redemption.vendor_id,
        "status": status,
        "label": label(status),
        "tone": TONES.get(status, "queued"),
        "final": status in FINAL,
        "amount": money(redemption.amount, pc),
        "note": vendor_note(redemption),
        "settled_at": redemption.settled_at.isoformat() if redemption.settled_at else None,
    }


def rooms_for(redemption: Redemption) -> list[str]:
    rooms = [realtime.vendor_room(redemption.vendor_id)]
    if redemption.beneficiary_id is not None:  # a decoy is nothing to the operations room
        rooms.append(realtime.project_room(redemption.project_id))
    return rooms


def announce(redemption: Redemption) -> None:
    """Push the redemption's state once the transaction that set it commits."""
    realtime.emit_after_commit(REDEMPTION_UPDATED, serialize(redemption), rooms_for(redemption))

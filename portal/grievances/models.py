"""A grievance, its thread of notes, and the workflow it moves through.

The description and the notes may hold anything a person wrote, names and numbers included, so
they are encrypted columns; lists and the audit log show the reference, type, priority and
status, never the text.
"""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.crypto import Encrypted
from portal.extensions import db
from portal.timeutil import utcnow

NEW, ASSIGNED, IN_PROGRESS, RESOLVED, CLOSED = (
    "new",
    "assigned",
    "in_progress",
    "resolved",
    "closed",
)
STATUSES = (NEW, ASSIGNED, IN_PROGRESS, RESOLVED, CLOSED)
STATUS_LABELS = {
    NEW: _l("New"),
    ASSIGNED: _l("Assigned"),
    IN_PROGRESS: _l("In progress"),
    RESOLVED: _l("Resolved"),
    CLOSED: _l("Closed"),
}
# Where each status may go next. A resolved case can be reopened (the person says it is not
# fixed); a closed one is final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    NEW: (ASSIGNED, CLOSED),
    ASSIGNED: (IN_PROGRESS, RESOLVED, CLOSED),
    IN_PROGRESS: (RESOLVED, CLOSED),
    RESOLVED: (CLOSED, IN_PROGRESS),
    CLOSED: (),
}
OPEN_STATUSES = (NEW, ASSIGNED, IN_PROGRESS)

TYPES = {
    "payment": _l("Payment or balance"),
    "vendor": _l("Vendor or shop"),
    "registration": _l("Registration or personal details"),
    "conduct": _l("Staff or volunteer conduct"),
    "safeguarding": _l("Safeguarding"),
    "other": _l("Other"),
}
PRIORITIES = {"low": _l("Low"), "normal": _l("Normal"), "high": _l("High"), "urgent": _l("Urgent")}
SOURCES = {
    "sms": _l("SMS"),
    "whatsapp": _l("WhatsApp"),
    "staff": _l("Staff"),
    "vendor": _l("Vendor"),
}
# Labels are lazy: shown in the reader's language. A change note is stored, so it is written in
# English (``portal.grievances.services``), as the audit log is.


class Grievance(db.Model):
    __tablename__ = "grievances"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The reference told to the person who reported it; no personal data.
    ref: Mapped[str] = mapped_column(String(12), unique=True)
    source: Mapped[str] = mapped_column(String(10))
    type: Mapped[str] = mapped_column(String(20), default="other")
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    status: Mapped[str] = mapped_column(String(12), default=NEW, index=True)
    description: Mapped[str] = mapped_column(Encrypted)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    beneficiary_id: Mapped[int | None] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="SET NULL"), index=True
    )
    vendor_id: Mapped[int | None] = mapped_column(
        ForeignKey("vendors.id", ondelete="SET NULL"), index=True
    )
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    due_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    notes: Mapped[list[GrievanceNote]] = relationship(
        back_populates="grievance",
        cascade="all, delete-orphan",
        order_by="GrievanceNote.id",
    )

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def overdue(self, today: date) -> bool:
        return self.is_open and self.due_on is not None and self.due_on < today


Index("ix_grievances_status_due", Grievance.status, Grievance.due_on)


class GrievanceNote(db.Model):
    """One entry of the thread: a note typed by staff, or the record of a change."""

    __tablename__ = "grievance_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    grievance_id: Mapped[int] = mapped_column(
        ForeignKey("grievances.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # "note" (typed text) or "change" (the workflow's own words, e.g. "Status: new → assigned").
    kind: Mapped[str] = mapped_column(String(10), default="note")
    body: Mapped[str] = mapped_column(Encrypted)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    grievance: Mapped[Grievance] = relationship(back_populates="notes")

"""The grievance workflow: opening one (from an SMS, a staff form or a vendor's phone), the
status moves, assignment, notes, and who sees what.

Every change is audited (ids and field names, never the text), announced to the live pages
after commit, and the person who raised it (a beneficiary) is told by SMS through the comms
queue, in the same transaction as the change: the message exists exactly when the change
commits, so a retried request or a double click cannot tell them twice.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import Select, exists, select

from portal import transitions
from portal.accounts.models import User
from portal.audit import services as audit
from portal.beneficiaries.models import Beneficiary, ProjectBeneficiary
from portal.comms.services import send_sms
from portal.errors import InvalidTransition, NotFound, ValidationFailed
from portal.extensions import db
from portal.grievances import live, messages
from portal.grievances.models import (
    ASSIGNED,
    NEW,
    OPEN_STATUSES,
    PRIORITIES,
    STATUS_LABELS,
    TRANSITIONS,
    TYPES,
    Grievance,
    GrievanceNote,
)
from portal.projects import services as projects
from portal.projects.models import ProjectMember
from portal.timeutil import utcnow

MANAGE = "grievances.manage"
MAX_TEXT = 2000
# 31 symbols without look-alikes (no 0/O, 1/I/L), so a reference read over the phone is typed
# right; 7 of them: 34 bits, and the column is unique.
_REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_ref() -> str:
    return "G" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(7))


def _check_fields(type_: str, priority: str, description: str | None = None) -> None:
    errors = {}
    if type_ not in TYPES:
        errors["type"] = _("Choose a type from the list.")
    if priority not in PRIORITIES:
        errors["priority"] = _("Choose a priority from the list.")
    if description is not None and not description.strip():
        errors["description"] = _("Say what the problem is.")
    if errors:
        raise ValidationFailed(errors)


def _project_of(beneficiary: Beneficiary) -> int | None:
    """The project a beneficiary's message is about: their most recent one."""
    return db.session.scalar(
        select(ProjectBeneficiary.project_id)
        .where(ProjectBeneficiary.beneficiary_id == beneficiary.id)
        .order_by(ProjectBeneficiary.added_at.desc(), ProjectBeneficiary.id.desc())
        .limit(1)
    )


def open_grievance(
    source: str,
    description: str,
    *,
    type_: str = "other",
    priority: str = "normal",
    beneficiary: Beneficiary | None = None,
    vendor_id: int | None = None,
    project_id: int | None = None,
    created_by: User | None = None,
    due_on: date | None = None,
    tell_person: bool = True,
) -> Grievance:
    """Record a grievance, audit it, and (for a beneficiary) send them its reference."""
    _check_fields(type_, priority, description)
    if project_id is None and beneficiary is not None:
        project_id = _project_of(beneficiary)
    grievance = Grievance(
        ref=new_ref(),
        source=source,
        type=type_,
        priority=priority,
        description=description.strip()[:MAX_TEXT],
        beneficiary_id=beneficiary.id if beneficiary else None,
        vendor_id=vendor_id,
        project_id=project_id,
        created_by_id=created_by.id if created_by else None,
        due_on=due_on,
    )
    db.session.add(grievance)
    db.session.flush()
    audit.record(
        "grievance.opened",
        f"Grievance {grievance.ref} opened ({source}, {type_}, {priority})",
        target=grievance,
        project_id=project_id,
        data={"source": source, "type": type_, "priority": priority},
    )
    if beneficiary is not None and tell_person:
        _tell(grievance, "opened", beneficiary)
    live.announce(grievance)
    return grievance


def _tell(grievance: Grievance, event: str, beneficiary: Beneficiary | None = None) -> None:
    person = beneficiary or (
        db.session.get(Beneficiary, grievance.beneficiary_id) if grievance.beneficiary_id else None
    )
    if person is None or person.pii is None:
        return
    body = messages.text(event, grievance.ref, person.language)
    if body:
        send_sms(person.pii.phone, body, f"grievance.{event}", project_id=grievance.project_id)


def _note(grievance: Grievance, body: str, kind: str, author: User | None) -> GrievanceNote:
    note = GrievanceNote(
        grievance_id=grievance.id,
        author_id=author.id if author else None,
        kind=kind,
        body=body,
    )
    db.session.add(note)
    return note


def change_status(grievance: Grievance, to_status: str, actor: User | None) -> None:
    """Move along the workflow (``TRANSITIONS``); refused with the reason otherwise.

    The move is one conditional UPDATE: of two people pressing "Resolved" at once, one
    succeeds and the other is told the case changed, and the person gets one message.
    """
    was = grievance.status
    if to_status not in TRANSITIONS.get(was, ()):
        raise InvalidTransition(
            _(
                "A grievance that is %(was)s cannot become %(to)s.",
                was=str(STATUS_LABELS.get(was, was)).lower(),
                to=str(STATUS_LABELS.get(to_status, to_status)).lower(),
            )
        )
    if to_status == ASSIGNED and grievance.assignee_id is None:
        raise ValidationFailed({"assignee_id": _("Choose who it is assigned to first.")})
    transitions.move(
        grievance,
        [was],
        to_status,
        _("Someone else changed this grievance a moment ago. Reload the page."),
        updated_at=utcnow(),
    )
    with force_locale("en"):  # a stored note, written in English as the audit log is
        change = f"Status: {STATUS_LABELS[was]} → {STATUS_LABELS[to_status]}"
    _note(grievance, change, "change", actor)
    audit.record(
        "grievance.status",
        f"Grievance {grievance.ref}: {was} → {to_status}",
        target=grievance,
        project_id=grievance.project_id,
        data={"from": was, "to": to_status},
    )
    _tell(grievance, to_status)
    live.announce(grievance)


def assignable(grievance: Grievance) -> list[User]:
    """Active staff who may manage grievances and see this one's project."""
    users = db.session.scalars(
        select(User).where(User.active.is_(True), User.closed_at.is_(None)).order_by(User.name)
    ).all()
    found = []
    for user in users:
        if not user.can(MANAGE):
            continue
        if user.sees_all_projects or (
            grievance.project_id is not None
            and db.session.scalar(
                select(
                    exists().where(
                        ProjectMember.user_id == user.id,
                        ProjectMember.project_id == grievance.project_id,
                    )
                )
            )
        ):
            found.append(user)
    return found


def update(
    grievance: Grievance,
    *,
    type_: str,
    priority: str,
    due_on: date | None,
    assignee_id: int | None,
    actor: User | None,
) -> list[str]:
    """Change the case's fields; assigning a new case moves it to "assigned". Returns the
    names of the fields that changed."""
    _check_fields(type_, priority)
    if assignee_id is not None and assignee_id not in {u.id for u in assignable(grievance)}:
        raise ValidationFailed(
            {"assignee_id": _("That person cannot take grievances of this project.")}
        )
    changed = []
    for name, value in (
        ("type", type_),
        ("priority", priority),
        ("due_on", due_on),
        ("assignee_id", assignee_id),
    ):
        if getattr(grievance, name) != value:
            setattr(grievance, name, value)
            changed.append(name)
    if not changed:
        return []
    grievance.updated_at = utcnow()
    db.session.flush()
    words = {
        "type": lambda: f"Type: {TYPES[type_]}",
        "priority": lambda: f"Priority: {PRIORITIES[priority]}",
        "due_on": lambda: f"Due: {due_on.isoformat() if due_on else 'none'}",
        "assignee_id": lambda: (
            "Assigned to: " + (db.session.get(User, assignee_id).name if assignee_id else "nobody")
        ),
    }
    with force_locale("en"):  # a stored note, written in English as the audit log is
        change = "; ".join(words[name]() for name in changed)
    _note(grievance, change, "change", actor)
    audit.record(
        "grievance.updated",
        f"Grievance {grievance.ref} edited",
        target=grievance,
        project_id=grievance.project_id,
        data={"fields": changed},
    )
    if "assignee_id" in changed and assignee_id is not None and grievance.status == NEW:
        change_status(grievance, ASSIGNED, actor)
    else:
        live.announce(grievance)
    return changed


def add_note(grievance: Grievance, body: str, actor: User | None) -> GrievanceNote:
    text = (body or "").strip()
    if not text:
        raise ValidationFailed({"body": _("Write the note first.")})
    note = _note(grievance, text[:MAX_TEXT], "note", actor)
    grievance.updated_at = utcnow()
    db.session.flush()
    audit.record(
        "grievance.note",
        f"Note added to grievance {grievance.ref}",
        target=grievance,
        project_id=grievance.project_id,
        data={"note_id": note.id},
    )
    live.announce(grievance)
    return note


def visible(user) -> Select:
    """Grievances of the projects the user sees; those of no project only for users who see
    every project."""
    return projects.scope(select(Grievance), Grievance.project_id, user)


def get_visible(user, grievance_id: int) -> Grievance:
    found = db.session.scalar(visible(user).where(Grievance.id == grievance_id))
    if found is None:
        raise NotFound(_("No such grievance."))
    return found


@dataclass
class Filters:
    status: str = ""
    type: str = ""
    priority: str = ""
    assignee_id: int | None = None
    unassigned: bool = False
    project_id: int | None = None
    overdue: bool = False
    beneficiary_id: int | None = None


def search(user, filters: Filters, today: date) -> Select:
    query = visible(user)
    if filters.status:
        query = query.where(Grievance.status == filters.status)
    if filters.type:
        query = query.where(Grievance.type == filters.type)
    if filters.priority:
        query = query.where(Grievance.priority == filters.priority)
    if filters.unassigned:
        query = query.where(Grievance.assignee_id.is_(None))
    elif filters.assignee_id:
        query = query.where(Grievance.assignee_id == filters.assignee_id)
    if filters.project_id:
        query = query.where(Grievance.project_id == filters.project_id)
    if filters.beneficiary_id:
        query = query.where(Grievance.beneficiary_id == filters.beneficiary_id)
    if filters.overdue:
        query = query.where(
            Grievance.status.in_(OPEN_STATUSES),
            Grievance.due_on.is_not(None),
            Grievance.due_on < today,
        )
    return query.order_by(Grievance.id.desc())


def user_names(ids) -> dict[int, str]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())

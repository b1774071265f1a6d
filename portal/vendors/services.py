"""Vendor registration, approval and suspension, and assignment to projects.

Status changes are announced as domain events (``portal.events``); whatever must happen when a
vendor is suspended lives in the listeners of the features concerned, not here.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import Select, exists, select

from portal import events
from portal.beneficiaries import normalize
from portal.crypto import blind_index
from portal.errors import InvalidTransition, NotFound
from portal.extensions import db
from portal.projects import links
from portal.projects import services as projects
from portal.projects.models import Project
from portal.settings.services import default_country
from portal.timeutil import utcnow
from portal.transitions import move
from portal.vendors.models import (
    CATEGORIES,
    STATUS_LABELS,
    STATUSES,
    SUSPENDED,
    TRANSITIONS,
    Vendor,
    VendorProject,
)

EDITABLE = ("name", "category", "contact_name", "location")


def _values(data: dict) -> dict:
    name = (data.get("name") or "").strip()
    if not name:
        raise normalize.InvalidValue("name", _("A name is required."))
    if data.get("category") not in CATEGORIES:
        raise normalize.InvalidValue("category", _("Choose a category."))
    phone = normalize.phone_e164(data.get("phone") or "", default_country())
    return {
        "name": name,
        "category": data["category"],
        "contact_name": (data.get("contact_name") or "").strip(),
        "location": (data.get("location") or "").strip(),
        "phone": phone,
        "phone_index": blind_index("vendor-phone:" + phone),
    }


def _ensure_unique_phone(phone_index: str, exclude_id: int | None = None) -> None:
    query = select(Vendor.id).where(Vendor.phone_index == phone_index)
    if exclude_id is not None:
        query = query.where(Vendor.id != exclude_id)
    if db.session.scalar(query) is not None:
        raise normalize.InvalidValue("phone", _("A vendor with this phone number is registered."))


def register(data: dict, project: Project | None = None) -> Vendor:
    values = _values(data)
    _ensure_unique_phone(values["phone_index"])
    vendor = Vendor(**values)
    db.session.add(vendor)
    db.session.flush()
    events.vendor_changed.send(
        vendor,
        action="vendor.registered",
        summary=f"Vendor {vendor.id} registered",
        project_id=project.id if project else None,
    )
    if project is not None:
        assign(vendor, project)
    return vendor


def update(vendor: Vendor, data: dict) -> Vendor:
    values = _values(data)
    _ensure_unique_phone(values["phone_index"], exclude_id=vendor.id)
    changed = sorted(k for k in (*EDITABLE, "phone") if getattr(vendor, k) != values[k])
    for key, value in values.items():
        setattr(vendor, key, value)
    db.session.flush()
    if changed:
        events.vendor_changed.send(
            vendor,
            action="vendor.updated",
            summary=f"Vendor {vendor.id} edited",
            data={"fields": changed},
        )
    return vendor


def change_status(vendor: Vendor, new_status: str, reason: str = "") -> Vendor:
    old = vendor.status
    if new_status not in STATUSES or new_status not in TRANSITIONS[old]:
        raise InvalidTransition(
            _(
                "A %(old)s vendor cannot become %(new)s.",
                old=str(STATUS_LABELS.get(old, old)).lower(),
                new=str(STATUS_LABELS.get(new_status, new_status)).lower(),
            )
        )
    # Only from the state this decision was made on: two staff acting at once (approve and
    # suspend) do not both win.
    move(
        vendor,
        (old,),
        new_status,
        lambda found: f"This vendor is {found} now, not {old}; reload and decide again.",
        status_reason=reason.strip()[:255],
        status_changed_at=utcnow(),
    )
    signal = events.vendor_suspended if new_status == SUSPENDED else events.vendor_approved
    signal.send(
        vendor,
        action=f"vendor.{new_status}",
        summary=f"Vendor {vendor.id}: {old} → {new_status}",
        data={"from": old, "to": new_status, "project_ids": project_ids_of(vendor)},
    )
    return vendor


def visible(user) -> Select:
    query = select(Vendor)
    ids = projects.visible_project_ids(user)
    if ids is not None:
        query = query.where(
            exists().where(VendorProject.vendor_id == Vendor.id, VendorProject.project_id.in_(ids))
        )
    return query


def search(user, *, status: str = "", project_id: int | None = None, q: str = "") -> Select:
    query = visible(user)
    if status in STATUSES:
        query = query.where(Vendor.status == status)
    if project_id:
        query = query.where(
            exists().where(
                VendorProject.vendor_id == Vendor.id, VendorProject.project_id == project_id
            )
        )
    if q.strip():
        term = q.strip()
        condition = Vendor.name.ilike(f"%{term}%")
        try:
            phone = normalize.phone_e164(term, default_country())
            condition = condition | (Vendor.phone_index == blind_index("vendor-phone:" + phone))
        except normalize.InvalidValue:
            pass
        query = query.where(condition)
    return query.order_by(Vendor.name, Vendor.id)


def get_visible(user, vendor_id: int) -> Vendor:
    vendor = db.session.scalar(visible(user).where(Vendor.id == vendor_id))
    if vendor is None:
        raise NotFound(_("No such vendor."))
    return vendor


def project_ids_of(vendor: Vendor) -> list[int]:
    return links.project_ids(VendorProject, VendorProject.vendor_id, vendor.id)


def assign(vendor: Vendor, project: Project) -> bool:
    if not links.add(VendorProject, VendorProject.vendor_id, vendor.id, project):
        return False
    events.vendor_changed.send(
        vendor,
        action="vendor.assigned",
        summary=f"Vendor {vendor.id} assigned to project {project.id}",
        project_id=project.id,
    )
    return True


def unassign(vendor: Vendor, project: Project) -> bool:
    if not links.remove(VendorProject, VendorProject.vendor_id, vendor.id, project):
        return False
    events.vendor_changed.send(
        vendor,
        action="vendor.unassigned",
        summary=f"Vendor {vendor.id} removed from project {project.id}",
        project_id=project.id,
    )
    return True

"""Local vendors (shops, pharmacies, clinics) and the projects they serve."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.crypto import Encrypted
from portal.extensions import db
from portal.timeutil import utcnow

PENDING, APPROVED, SUSPENDED = "pending", "approved", "suspended"
STATUSES = (PENDING, APPROVED, SUSPENDED)
TRANSITIONS = {PENDING: (APPROVED, SUSPENDED), APPROVED: (SUSPENDED,), SUSPENDED: (APPROVED,)}
CATEGORIES = {
    "shop": _l("Shop"),
    "pharmacy": _l("Pharmacy"),
    "clinic": _l("Clinic / vision centre"),
    "market": _l("Market stall"),
    "other": _l("Other"),
}
# A status as people read it (the code stays in the database and the badge's class).
STATUS_LABELS = {PENDING: _l("Pending"), APPROVED: _l("Approved"), SUSPENDED: _l("Suspended")}


class Vendor(db.Model):
    __tablename__ = "vendors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(20), default="shop")
    # The owner's phone signs the vendor in later: personal data, so encrypted and indexed.
    contact_name: Mapped[str] = mapped_column(Encrypted)
    phone: Mapped[str] = mapped_column(Encrypted)
    phone_index: Mapped[str] = mapped_column(String(64), unique=True)
    location: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[str] = mapped_column(String(10), default=PENDING, index=True)
    status_reason: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    status_changed_at: Mapped[datetime | None]
    # The language of the phone pages (``portal.i18n``); None: the phone's, else English.
    locale: Mapped[str | None] = mapped_column(String(8))


class VendorProject(db.Model):
    __tablename__ = "vendor_projects"
    __table_args__ = (UniqueConstraint("vendor_id", "project_id", name="uq_vendor_project"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    vendor_id: Mapped[int] = mapped_column(ForeignKey("vendors.id", ondelete="CASCADE"))
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

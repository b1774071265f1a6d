"""Aid projects and who works on them."""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import utcnow

TYPES = {
    "cva": _l("CVA voucher (spent at vendors)"),
    "cash": _l("Cash transfer (to beneficiary wallets)"),
    "anticipatory": _l("Anticipatory action (forecast trigger)"),
    "evoucher": _l("E-voucher for a service"),
}
DRAFT, ACTIVE, CLOSED = "draft", "active", "closed"
STATUSES = (DRAFT, ACTIVE, CLOSED)
STATUS_LABELS = {DRAFT: _l("Draft"), ACTIVE: _l("Active"), CLOSED: _l("Closed")}
# The only moves allowed: a closed project never opens again.
TRANSITIONS = {DRAFT: (ACTIVE, CLOSED), ACTIVE: (CLOSED,), CLOSED: ()}


class Project(db.Model):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default=DRAFT, index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(String(120), default="")
    currency: Mapped[str] = mapped_column(String(8), default="NPR")
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    members: Mapped[list[ProjectMember]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )

    @property
    def type_label(self) -> str:
        return str(TYPES.get(self.type, self.type))

    @property
    def is_closed(self) -> bool:
        return self.status == CLOSED


class ProjectMember(db.Model):
    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project_id", "user_id", name="uq_project_member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    project: Mapped[Project] = relationship(back_populates="members")
    user = relationship("User")

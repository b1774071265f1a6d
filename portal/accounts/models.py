"""Staff users, roles with runtime-editable permissions, and server-side sessions."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.accounts.permissions import ALL_PROJECTS
from portal.extensions import db
from portal.timeutil import utcnow


class Role(db.Model):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    grants: Mapped[list[RolePermission]] = relationship(
        back_populates="role", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def permissions(self) -> set[str]:
        return {grant.permission for grant in self.grants}

    def set_permissions(self, names: set[str]) -> None:
        keep = [g for g in self.grants if g.permission in names]
        have = {g.permission for g in keep}
        self.grants = keep + [RolePermission(permission=n) for n in sorted(names - have)]


class RolePermission(db.Model):
    __tablename__ = "role_permissions"
    __table_args__ = (UniqueConstraint("role_id", "permission", name="uq_role_permission"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), index=True)
    permission: Mapped[str] = mapped_column(String(64))
    role: Mapped[Role] = relationship(back_populates="grants")


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Two-factor sign-in: when the user confirmed their authenticator (None: not set up), and
    # until when a user whose role requires it may still sign in without (set at the first
    # such sign-in). The secret and recovery codes live in portal/twofactor.
    two_factor_enabled_at: Mapped[datetime | None]
    two_factor_grace_until: Mapped[datetime | None]
    # A closed account stays for the audit trail (and keeps its email) but never signs in again.
    closed_at: Mapped[datetime | None]
    # The language of the pages (``portal.i18n``); None: the browser's, else English.
    locale: Mapped[str | None] = mapped_column(String(8))
    role: Mapped[Role] = relationship(lazy="joined")

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def can(self, permission: str) -> bool:
        return permission in self.role.permissions

    @property
    def sees_all_projects(self) -> bool:
        return self.can(ALL_PROJECTS)


class UserSession(db.Model):
    """A signed-in browser. Revoking the row ends it at its next request or socket event."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    revoked_at: Mapped[datetime | None]

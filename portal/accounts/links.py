"""Emailed links: invitations, password resets, email change confirmations and their undo.

A link carries a random token; only its SHA-256 is stored, so a copy of the database opens no
account. A link works once (taking it is one conditional UPDATE, so two clicks at once cannot
both pass) and until it expires or is revoked. Emailed URLs start with PUBLIC_BASE_URL and go
through ``/t/<token>``, the one path whose token the request log hides (portal/serving.py).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import ForeignKey, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from portal.crypto import token_hash
from portal.extensions import db
from portal.timeutil import utcnow

INVITATION, PASSWORD_RESET = "invitation", "password_reset"
EMAIL_CHANGE, EMAIL_UNDO = "email_change", "email_undo"
PURPOSES = (INVITATION, PASSWORD_RESET, EMAIL_CHANGE, EMAIL_UNDO)
PATH_PREFIX = "/t/"


class AccountLink(db.Model):
    __tablename__ = "account_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The account it acts on (none for an invitation until it is accepted).
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # Invitation: the invitee; email change: the new address; undo: the old one.
    email: Mapped[str] = mapped_column(String(255), index=True)
    # Invitations: the role and the projects (ids, comma separated) the account will have.
    role_id: Mapped[int | None] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"))
    project_ids: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    @property
    def projects(self) -> list[int]:
        return [int(p) for p in self.project_ids.split(",") if p]

    @property
    def usable(self) -> bool:
        return self.used_at is None and self.revoked_at is None and self.expires_at > utcnow()


def issue(purpose: str, email: str, ttl: timedelta, **fields) -> tuple[AccountLink, str]:
    """A new link; returns the row and the token (shown once: only its hash is kept)."""
    token = secrets.token_urlsafe(32)
    link = AccountLink(
        purpose=purpose,
        token_hash=token_hash(token),
        email=email,
        expires_at=utcnow() + ttl,
        **fields,
    )
    db.session.add(link)
    db.session.flush()
    return link, token


def renew(link: AccountLink, ttl: timedelta) -> str:
    """A fresh token and expiry for a link (resending): the link emailed before stops working."""
    token = secrets.token_urlsafe(32)
    link.token_hash = token_hash(token)
    link.expires_at = link.sent_at = utcnow()
    link.expires_at += ttl
    db.session.flush()
    return token


def find(token: str | None, purpose: str) -> AccountLink | None:
    """The usable link of ``purpose`` with this token, or None (unknown, used, expired)."""
    if not token or len(token) > 128:
        return None
    link = db.session.scalar(
        select(AccountLink).where(
            AccountLink.token_hash == token_hash(token), AccountLink.purpose == purpose
        )
    )
    return link if link is not None and link.usable else None


def purpose_of(token: str | None) -> str | None:
    """What a usable link is for (to send ``/t/<token>`` to its page), or None."""
    if not token or len(token) > 128:
        return None
    link = db.session.scalar(select(AccountLink).where(AccountLink.token_hash == token_hash(token)))
    return link.purpose if link is not None and link.usable else None


def take(link: AccountLink) -> bool:
    """Use the link up; False when another request used, revoked or outlived it first."""
    now = utcnow()
    taken = db.session.execute(
        update(AccountLink)
        .where(
            AccountLink.id == link.id,
            AccountLink.used_at.is_(None),
            AccountLink.revoked_at.is_(None),
            AccountLink.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        return False
    link.used_at = now
    return True


def revoke_open(purpose: str, *, user_id: int | None = None, email: str | None = None) -> int:
    """Revoke the open links of ``purpose`` for a user or an address; returns how many."""
    query = update(AccountLink).where(
        AccountLink.purpose == purpose,
        AccountLink.used_at.is_(None),
        AccountLink.revoked_at.is_(None),
    )
    if user_id is not None:
        query = query.where(AccountLink.user_id == user_id)
    if email is not None:
        query = query.where(AccountLink.email == email)
    result = db.session.execute(
        query.values(revoked_at=utcnow()).execution_options(synchronize_session=False)
    )
    return result.rowcount


def url(token: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + PATH_PREFIX + token


def check_public_base_url(config) -> None:
    """Emailed links must lead somewhere real: production needs an https PUBLIC_BASE_URL."""
    value = config.get("PUBLIC_BASE_URL") or ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise RuntimeError(
            f"PUBLIC_BASE_URL must be the portal's address, as https://portal.example.org; "
            f"got {value!r}."
        )
    if config.get("ENV_NAME") == "production" and parts.scheme != "https":
        raise RuntimeError("PUBLIC_BASE_URL must start with https:// in production.")

"""A user's authenticator secret, their recovery codes, and the browsers they sign in from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.crypto import Encrypted
from portal.extensions import db
from portal.timeutil import utcnow


class TwoFactorSecret(db.Model):
    """The TOTP secret (encrypted). Unconfirmed until the user types a first right code."""

    __tablename__ = "two_factor_secrets"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(Encrypted)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None]
    # The last time step a code was accepted for: a code is good once, and never an older one.
    last_step: Mapped[int | None] = mapped_column(BigInteger)


class RecoveryCode(db.Model):
    """One of the ten codes shown once at enrolment; stored as a keyed hash, each usable once."""

    __tablename__ = "two_factor_recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "code_hash", name="uq_recovery_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class KnownDevice(db.Model):
    """A browser the user has signed in from, known by the random token of its device cookie.

    A sign-in from a browser the user has no row for is a new device (they are told by email).
    ``remembered_until``: the user asked not to be asked for a code on it until then.
    """

    __tablename__ = "known_devices"
    __table_args__ = (UniqueConstraint("user_id", "token_hash", name="uq_known_device"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    remembered_until: Mapped[datetime | None]

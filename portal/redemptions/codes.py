"""One-time codes: six digits from the OS CSPRNG, kept only as a keyed hash of what they unlock.

The hash is HMAC-SHA256 under a key derived from PII_KEY (purpose "otp") over the purpose, the
ids and values the code is bound to (a redemption's id and amount; a vendor's id and sign-in
attempt) and the code. So a code opens one thing only, a changed amount voids it, and the stored
hash cannot be checked offline without the key. Codes are never logged, never put in an
exception and never returned by anything but ``new_code``.

The checks are conditional UPDATEs on the row that holds the code (``code_hash``,
``code_expires_at``, ``tries``, ``resends``, ``last_sent_at``, ``status``): accepting a code and
counting a wrong one are each one statement, so concurrent tries cannot both win or slip past
the limit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case, update

from portal import crypto
from portal.extensions import db
from portal.timeutil import utcnow

DIGITS = 6
AWAITING, LOCKED, EXPIRED = "awaiting_code", "locked", "expired"

# What a check found. "used": the row no longer waits for a code (accepted, cancelled...).
ACCEPTED, WRONG, USED = "accepted", "wrong", "used"


def new_code() -> str:
    return f"{secrets.randbelow(10**DIGITS):0{DIGITS}d}"


def clean(raw: str | None) -> str | None:
    """The code as typed, without spaces or dashes; None if it cannot be a code."""
    value = "".join(ch for ch in (raw or "") if ch not in " -\t")
    return value if len(value) == DIGITS and value.isascii() and value.isdigit() else None


def digest(purpose: str, *binding: object, code: str) -> str:
    message = "\x1f".join([purpose, *(str(part) for part in binding), code])
    return hmac.new(crypto.derived_key("otp"), message.encode(), hashlib.sha256).hexdigest()


def ttl() -> timedelta:
    return timedelta(seconds=current_app.config["OTP_TTL_SECONDS"])


def max_tries() -> int:
    return current_app.config["OTP_MAX_TRIES"]


def max_resends() -> int:
    return current_app.config["OTP_MAX_RESENDS"]


def resend_gap() -> timedelta:
    return timedelta(seconds=current_app.config["OTP_RESEND_SECONDS"])


@dataclass(frozen=True)
class Check:
    outcome: str  # ACCEPTED, WRONG, LOCKED, EXPIRED or USED
    tries_left: int = 0
    counted: bool = False  # this check used up one of the row's tries

    @property
    def ok(self) -> bool:
        return self.outcome == ACCEPTED


def accept(model, row_id: int, code_digest: str, new_status: str, **values) -> bool:
    """Take the code: one conditional UPDATE, True only for the one caller that matched.

    The row must wait for a code, hold this digest, be under the try limit and unexpired.
    ``values`` are set in the same statement (e.g. an accepted_at).
    """
    result = db.session.execute(
        update(model)
        .where(
            model.id == row_id,
            model.status == AWAITING,
            model.code_hash == code_digest,
            model.tries < max_tries(),
            model.code_expires_at > utcnow(),
        )
        .values(status=new_status, code_hash=None, **values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def refuse(model, row_id: int) -> Check:
    """After ``accept`` said no: say why, counting a wrong try (and locking at the limit)."""
    now = utcnow()
    limit = max_tries()
    counted = db.session.execute(
        update(model)
        .where(
            model.id == row_id,
            model.status == AWAITING,
            model.code_expires_at > now,
            model.tries < limit,
        )
        .values(
            tries=model.tries + 1, status=case((model.tries + 1 >= limit, LOCKED), else_=AWAITING)
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    counted = counted == 1
    row = db.session.get(model, row_id, populate_existing=True)
    if row is None:
        return Check(USED)
    if row.status == AWAITING and row.code_expires_at <= now:
        expire(model, row_id)
        return Check(EXPIRED, counted=counted)
    if row.status == AWAITING and row.tries >= limit:
        _lock(model, row_id)
        return Check(LOCKED, counted=counted)
    if row.status in (LOCKED, EXPIRED):
        return Check(row.status, counted=counted)
    if row.status != AWAITING:
        return Check(USED)
    if not counted:
        return Check(USED)
    return Check(WRONG, tries_left=max(limit - row.tries, 0), counted=True)


def _lock(model, row_id: int) -> None:
    db.session.execute(
        update(model)
        .where(model.id == row_id, model.status == AWAITING)
        .values(status=LOCKED, code_hash=None)
        .execution_options(synchronize_session=False)
    )
    db.session.expire_all()


def expire(model, row_id: int) -> bool:
    done = db.session.execute(
        update(model)
        .where(model.id == row_id, model.status == AWAITING, model.code_expires_at <= utcnow())
        .values(status=EXPIRED, code_hash=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.expire_all()
    return done == 1


def renew(model, row_id: int, code_digest: str | None) -> bool:
    """Replace the code for a resend, within the resend limit and not sooner than the gap.

    Wrong tries are not forgiven: the try limit holds across resends. A None digest leaves a
    row that no code can match (a decoy keeps behaving like a real one).
    """
    now = utcnow()
    done = db.session.execute(
        update(model)
        .where(
            model.id == row_id,
            model.status == AWAITING,
            model.resends < max_resends(),
            model.tries < max_tries(),
            model.last_sent_at <= now - resend_gap(),
        )
        .values(
            code_hash=code_digest,
            code_expires_at=now + ttl(),
            resends=model.resends + 1,
            last_sent_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.expire_all()
    return done == 1


def resend_wait(row) -> int:
    """Seconds until a resend is allowed (0: now); -1 when no resend is left."""
    if row.status != AWAITING or row.resends >= max_resends() or row.tries >= max_tries():
        return -1
    ready: datetime = row.last_sent_at + resend_gap()
    return max(int((ready - utcnow()).total_seconds() + 0.999), 0)

"""Setting up two-factor sign-in, checking a code at sign-in, recovery codes, and resets.

A TOTP code is accepted once: the step it belongs to must be later than the last step accepted,
and the check and the update are one conditional UPDATE, so two requests racing with the same
code cannot both pass. A recovery code is spent the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, func, or_, select, update

from portal import events
from portal.accounts import notify
from portal.accounts.models import User
from portal.crypto import derived_key
from portal.errors import Conflict, DomainError
from portal.extensions import db
from portal.timeutil import utcnow
from portal.twofactor import devices, totp
from portal.twofactor.models import RecoveryCode, TwoFactorSecret

RECOVERY_COUNT = 10
# Lower-case letters and digits without the look-alikes (0/o, 1/l/i): read off paper.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 10  # about 50 bits each, and each is good once

TOTP, RECOVERY = "totp", "recovery"


class CodeRefused(DomainError):
    status = 400


class OwnReset(DomainError):
    status = 403


def _normalise_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _recovery_hash(user_id: int, code: str) -> str:
    # Keyed, and per user: a copy of the table alone gives nothing to guess against offline.
    message = b"recovery code\x00%d\x00" % user_id + _normalise_recovery(code).encode()
    return hmac.new(derived_key("otp"), message, hashlib.sha256).hexdigest()


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def secret_row(user: User) -> TwoFactorSecret | None:
    return db.session.get(TwoFactorSecret, user.id)


def begin(user: User) -> TwoFactorSecret:
    """The secret being set up: the same one until confirmed, so reloading keeps the QR code."""
    row = secret_row(user)
    if row is not None and row.confirmed_at is not None:
        raise Conflict(_("Two-factor sign-in is already set up."))
    if row is None:
        row = TwoFactorSecret(user_id=user.id, secret=totp.new_secret())
        db.session.add(row)
        db.session.flush()
    return row


def setup_uri(user: User, row: TwoFactorSecret) -> str:
    return totp.provisioning_uri(row.secret, user.email, current_app.config["TWO_FACTOR_ISSUER"])


def confirm(user: User, code: str) -> list[str]:
    """Finish the set-up with a first right code; returns the recovery codes (shown once)."""
    row = secret_row(user)
    if row is None or row.confirmed_at is not None:
        raise Conflict(_("There is no two-factor set-up in progress."))
    step = totp.matching_step(row.secret, code)
    if step is None:
        raise CodeRefused(
            _("That code is not right. Check the time on your phone and type the code shown now.")
        )
    now = utcnow()
    row.confirmed_at, row.last_step = now, step
    user.two_factor_enabled_at, user.two_factor_grace_until = now, None
    codes = _replace_recovery_codes(user)
    events.two_factor_changed.send(
        user, action="two_factor.enabled", summary=f"User {user.id} set up two-factor sign-in"
    )
    return codes


def _replace_recovery_codes(user: User) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_COUNT)]
    db.session.add_all(
        RecoveryCode(user_id=user.id, code_hash=_recovery_hash(user.id, c)) for c in codes
    )
    db.session.flush()
    return codes


def verify(user: User, code: str) -> str | None:
    """Check a sign-in code: TOTP (six digits) or a recovery code. Returns which was used, or
    None when the code is wrong or was used already."""
    if user.two_factor_enabled_at is None:
        return None
    code = (code or "").strip()[:64]
    digits = "".join(code.split())
    if len(digits) == totp.DIGITS and digits.isdigit():
        row = secret_row(user)
        step = None if row is None else totp.matching_step(row.secret, digits)
        if step is None:
            return None
        spent = db.session.execute(
            update(TwoFactorSecret)
            .where(
                TwoFactorSecret.user_id == user.id,
                or_(TwoFactorSecret.last_step.is_(None), TwoFactorSecret.last_step < step),
            )
            .values(last_step=step)
        ).rowcount
        return TOTP if spent == 1 else None
    if len(_normalise_recovery(code)) != _RECOVERY_LENGTH:
        return None
    spent = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_hash(user.id, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
    ).rowcount
    if spent != 1:
        return None
    events.two_factor_changed.send(
        user,
        action="two_factor.recovery_code_used",
        summary=f"User {user.id} signed in with a recovery code; {recovery_left(user)} left",
    )
    return RECOVERY


def recovery_left(user: User) -> int:
    return db.session.scalar(
        select(func.count(RecoveryCode.id)).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
        )
    )


def renew_recovery_codes(user: User, code: str) -> list[str]:
    """New recovery codes (the old ones stop working), against a current authenticator code."""
    if verify(user, code) != TOTP:
        raise CodeRefused(_("That code is not right, or was used already: wait for the next one."))
    codes = _replace_recovery_codes(user)
    events.two_factor_changed.send(
        user,
        action="two_factor.recovery_codes_renewed",
        summary=f"User {user.id} replaced their recovery codes",
    )
    return codes


def reset(user: User, *, actor: User | None) -> None:
    """Remove a user's two-factor set-up (a lost phone): they set it up again at their next
    sign-in, with a fresh grace period. ``actor`` None: an operator at the command line.

    Nobody resets their own: that would let a stolen password take off the second factor.
    """
    if actor is not None and actor.id == user.id:
        raise OwnReset(
            _("You cannot reset your own two-factor sign-in. Ask another administrator.")
        )
    if user.two_factor_enabled_at is None and secret_row(user) is None:
        raise Conflict(_("This user has no two-factor sign-in to reset."))
    remove(user)
    events.two_factor_changed.send(
        user,
        action="two_factor.reset",
        summary=f"Two-factor sign-in of user {user.id} reset"
        + (f" by user {actor.id}" if actor else " from the command line"),
    )
    notify.send_email(user, "two_factor_reset", at=utcnow())


def remove(user: User) -> None:
    """Delete the user's secret and recovery codes and forget their remembered browsers."""
    db.session.execute(delete(TwoFactorSecret).where(TwoFactorSecret.user_id == user.id))
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    devices.forget_all(user.id)
    user.two_factor_enabled_at = user.two_factor_grace_until = None
    db.session.flush()

"""Emails that tell a staff member about a change to their own account.

A change they did not make is how a stolen account is noticed: each notice says what changed,
when, and what to do if it was not them.
"""

from __future__ import annotations

from flask import current_app

from portal.accounts.models import User
from portal.comms import mail
from portal.timeutil import utcnow


def _when() -> str:
    return utcnow().strftime("%Y-%m-%d %H:%M UTC")


def password_changed(user: User, how: str) -> None:
    """``how``: "changed" (on the account page) or "reset" (from an emailed link)."""
    mail.send_email(
        user.email,
        "Your portal password was changed",
        "password_changed",
        "accounts.password_changed",
        name=user.name,
        how=how,
        when=_when(),
        forgot_url=current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/password/forgot",
    )

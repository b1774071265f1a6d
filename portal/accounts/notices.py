"""Emails that tell a staff member about a change to their own account.

A change they did not make is how a stolen account is noticed: each notice says what changed,
when, and what to do if it was not them.
"""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l

from portal.accounts.models import User
from portal.comms import mail
from portal.i18n import locales
from portal.timeutil import utcnow


def password_changed(user: User, how: str) -> None:
    """``how``: "changed" (on the account page) or "reset" (from an emailed link)."""
    mail.send_email(
        user.email,
        _l("Your portal password was changed"),
        "password_changed",
        "accounts.password_changed",
        locale=locales.of_user(user),
        name=user.name,
        how=how,
        when=utcnow(),
        forgot_url=current_app.config["PUBLIC_BASE_URL"].rstrip("/") + "/password/forgot",
    )

"""Account notices by email (a sign-in from a new device, a two-factor reset): one seam.

The texts are ``templates/email/<template>.txt`` and ``.html``; the message goes through the
email channel (``portal.comms.mail``): stored encrypted in the outbox and sent by a job with
retries, in the caller's transaction. Nothing here logs an address or a text.
"""

from __future__ import annotations

from flask import render_template
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from portal.accounts.models import User
from portal.i18n import locales

SUBJECTS = {
    "new_device": _l("New sign-in to your aid portal account"),
    "two_factor_reset": _l("Your two-factor sign-in was reset"),
}


def render(template: str, user: User, **ctx) -> tuple[str, str]:
    """(subject, plain-text body) of a notice, in the user's language."""
    with force_locale(locales.of_user(user)):
        return str(SUBJECTS[template]), render_template(f"email/{template}.txt", user=user, **ctx)


def send_email(user: User, template: str, **ctx) -> None:
    from portal.comms import mail

    mail.send_email(
        user.email,
        SUBJECTS[template],
        template,
        purpose=f"account.{template}",
        locale=locales.of_user(user),
        user=user,
        **ctx,
    )

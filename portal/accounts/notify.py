"""Account notices by email (a sign-in from a new device, two-factor reset): one seam.

The text comes from ``templates/email/<template>.txt`` (first line: the subject). When the comms
module offers an email channel (``portal.comms.services.send_email``) the message goes through
it, and so through the outbox, encrypted, by a job with retries. Until then only the fact that a
notice was due is logged: never the address or the text.
"""

from __future__ import annotations

import logging

from flask import render_template

from portal.accounts.models import User

log = logging.getLogger(__name__)


def render(template: str, user: User, **ctx) -> tuple[str, str]:
    """(subject, body) of a notice."""
    text = render_template(f"email/{template}.txt", user=user, **ctx)
    subject, _, body = text.strip().partition("\n")
    return subject.strip(), body.strip() + "\n"


def send_email(user: User, template: str, **ctx) -> None:
    from portal.comms import services as comms

    subject, body = render(template, user, **ctx)
    channel = getattr(comms, "send_email", None)
    if channel is None:
        log.info("account notice %s for user %s not sent: no email channel", template, user.id)
        return
    channel(user.email, subject, body, purpose=f"account.{template}")

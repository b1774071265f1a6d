"""Queueing email: a message row now, the provider call in a ``comms.email`` job after commit
(``portal.comms.services.deliver``, which sends SMS too).

The row is written in the caller's transaction, so an email exists exactly when the change that
asked for it commits, and a job that fails is retried until the server takes it. The subject and
both bodies are rendered here, from ``templates/email/<name>.txt`` and ``.html``, and stored
encrypted. Nothing logs an address or a text.

Each email is written in its reader's language (``locale``): a staff member's own choice, an
invitation in the inviter's. The subject may be a lazy string: it is translated here, under that
language, with the bodies (dates and numbers in them too).
"""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from datetime import datetime, timedelta

from flask import current_app, render_template
from flask_babel import force_locale

from portal.comms.models import EMAIL, OutboxMessage
from portal.comms.services import KEEP_DAYS
from portal.extensions import db
from portal.i18n.locales import PAGE_LOCALES
from portal.jobs import dispatch
from portal.jobs.kinds import COMMS_EMAIL
from portal.timeutil import utcnow


def send_email(
    to: str,
    subject: str,
    template: str,
    purpose: str,
    *,
    expires_at: datetime | None = None,
    locale: str | None = None,
    **context,
) -> OutboxMessage:
    """Queue an email from ``templates/email/<template>.txt`` and ``.html``. ``expires_at``:
    when its link stops working; the email is not sent after it, and is blanked then.
    ``locale``: the reader's language (None: the current one, the page's in a request)."""
    with _language(locale):
        subject = str(subject)
        context = {"subject": subject, "email_locale": locale, **context}
        body = render_template(f"email/{template}.txt", **context)
        html_body = render_template(f"email/{template}.html", **context)
    message = OutboxMessage(
        channel=EMAIL,
        key=str(uuid.uuid4()),
        purpose=purpose,
        recipient=to,
        subject=subject,
        body=body,
        html_body=html_body,
        provider=current_app.config.get("EMAIL_PROVIDER") or "outbox",
        purge_after=expires_at or utcnow() + timedelta(days=KEEP_DAYS),
    )
    db.session.add(message)
    db.session.flush()
    job = dispatch.enqueue(COMMS_EMAIL.name, {"message_id": message.id})
    message.job_id = job.id
    return message


def _language(locale: str | None):
    if locale is None:
        return nullcontext()
    return force_locale(locale if locale in PAGE_LOCALES else PAGE_LOCALES[0])

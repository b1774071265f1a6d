"""Sending email: a message row now, the provider call in a ``comms.email`` job after commit.

As for SMS (``portal.comms.services``): the row is written in the caller's transaction, so an
email exists exactly when the change that asked for it commits, and a job that fails is retried
until the server takes it. The subject and both bodies are rendered here, from
``templates/email/<name>.txt`` and ``.html``, and stored encrypted. Nothing logs an address or
a text.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app, render_template

from portal.comms.email import get_provider
from portal.comms.models import EMAIL, FAILED, SENT, OutboxMessage
from portal.comms.providers import ProviderError
from portal.comms.services import KEEP_DAYS, purge_expired
from portal.extensions import db
from portal.jobs import dispatch
from portal.jobs.kinds import COMMS_EMAIL
from portal.jobs.lifecycle import PermanentJobError, RefusedJob, RetryKeepingWork
from portal.timeutil import utcnow


def send_email(
    to: str,
    subject: str,
    template: str,
    purpose: str,
    *,
    expires_at: datetime | None = None,
    **context,
) -> OutboxMessage:
    """Queue an email from ``templates/email/<template>.txt`` and ``.html``. ``expires_at``:
    when its link stops working; the email is not sent after it, and is blanked then."""
    context = {"subject": subject, **context}
    message = OutboxMessage(
        channel=EMAIL,
        purpose=purpose,
        recipient=to,
        subject=subject,
        body=render_template(f"email/{template}.txt", **context),
        html_body=render_template(f"email/{template}.html", **context),
        provider=current_app.config.get("EMAIL_PROVIDER") or "outbox",
        purge_after=expires_at or utcnow() + timedelta(days=KEEP_DAYS),
    )
    db.session.add(message)
    db.session.flush()
    job = dispatch.enqueue(COMMS_EMAIL.name, {"message_id": message.id})
    message.job_id = job.id
    return message


def deliver(message_id: int) -> str:
    """The ``comms.email`` job: hand the email to the provider; once sent, mark it so."""
    purge_expired()
    message = db.session.get(OutboxMessage, message_id)
    if message is None or message.channel != EMAIL:
        raise PermanentJobError("The email this job was for no longer exists.")
    if message.status == SENT:
        return "already sent"
    if message.purged_at is not None or message.body is None:
        message.status = FAILED
        message.error = "Expired before it could be sent."
        return "expired before it could be sent"
    provider = get_provider(current_app.config)
    message.attempts += 1
    try:
        ref = provider.send(message.recipient, message.subject, message.body, message.html_body)
    except ProviderError as exc:
        message.error = str(exc)
        if exc.permanent:
            message.status = FAILED
            raise RefusedJob(str(exc)) from None
        raise RetryKeepingWork(str(exc)) from exc
    message.status = SENT
    message.provider = provider.name
    message.provider_ref = ref
    message.error = None
    message.sent_at = utcnow()
    return f"sent through {provider.name}"

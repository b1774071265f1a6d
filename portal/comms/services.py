"""Sending SMS: a message row now, the provider call in a ``comms.sms`` job after commit (email
is queued by ``portal.comms.mail`` and delivered here too).

The row is written in the caller's transaction, so a message exists exactly when the change that
asked for it commits, and a job that fails is retried until the provider takes it. Nothing here
logs a number or a text.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from portal.comms import email
from portal.comms.models import EMAIL, FAILED, SENT, SMS, OutboxMessage
from portal.comms.providers import ProviderError, get_provider
from portal.extensions import db
from portal.jobs import dispatch
from portal.jobs.kinds import COMMS_SMS
from portal.jobs.lifecycle import PermanentJobError, RefusedJob, RetryKeepingWork
from portal.projects import services as projects
from portal.timeutil import utcnow

# Messages without a code are kept this long as sent, then blanked like the others.
KEEP_DAYS = 30


def send_sms(
    to_e164: str,
    body: str,
    purpose: str,
    *,
    expires_at: datetime | None = None,
    project_id: int | None = None,
    key: str | None = None,
) -> OutboxMessage:
    """Queue an SMS. ``expires_at``: when the text stops being useful (a code's expiry); the
    message is not sent after it, and its text and number are blanked then. ``key``: the effect
    the message is for; a second call with the same key returns the first message and queues
    nothing (the unique column stops two transactions that race past this check)."""
    if key is not None:
        found = keyed(key)
        if found is not None:
            return found
    message = OutboxMessage(
        channel=SMS,
        purpose=purpose,
        recipient=to_e164,
        body=body,
        provider=current_app.config.get("SMS_PROVIDER") or "outbox",
        project_id=project_id,
        purge_after=expires_at or utcnow() + timedelta(days=KEEP_DAYS),
        dedupe_key=key,
    )
    db.session.add(message)
    db.session.flush()
    job = dispatch.enqueue(COMMS_SMS.name, {"message_id": message.id}, project_id=project_id)
    message.job_id = job.id
    return message


def keyed(key: str) -> OutboxMessage | None:
    """The message already queued for the effect ``key``, if any."""
    return db.session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == key))


def deliver(message_id: int) -> str:
    """The ``comms.sms`` and ``comms.email`` jobs: hand the message to its channel's provider;
    once it is sent, mark it so."""
    purge_expired()
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        raise PermanentJobError("The message this job was for no longer exists.")
    if message.status == SENT:
        return "already sent"
    if message.purged_at is not None or message.body is None:
        message.status = FAILED
        message.error = "Expired before it could be sent."
        return "expired before it could be sent"
    if message.channel == EMAIL:
        provider = email.get_provider(current_app.config)
        content = (message.recipient, message.subject, message.body, message.html_body)
    else:
        provider = get_provider(current_app.config)
        content = (message.recipient, message.body)
    message.attempts += 1
    try:
        ref = provider.send(*content)
    except ProviderError as exc:
        message.error = str(exc)
        if exc.permanent:
            message.status = FAILED
            raise RefusedJob(str(exc)) from None
        # The attempt count and the provider's answer are kept with the failed attempt.
        raise RetryKeepingWork(str(exc)) from exc
    message.status = SENT
    message.provider = provider.name
    message.provider_ref = ref
    message.error = None
    message.sent_at = utcnow()
    return f"sent through {provider.name}"


def purge_expired(limit: int = 500) -> int:
    """Blank the text and number of messages past their keeping time; returns how many."""
    now = utcnow()
    ids = list(
        db.session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.purge_after < now, OutboxMessage.purged_at.is_(None))
            .limit(limit)
        )
    )
    if not ids:
        return 0
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.purged_at.is_(None))
        .values(body=None, recipient=None, subject=None, html_body=None, purged_at=now)
        .execution_options(synchronize_session=False)
    )
    return len(ids)


def recent(user, channels: tuple[str, ...] = (SMS,), limit: int = 100) -> list[OutboxMessage]:
    """The latest messages of ``channels`` in the projects the user sees (those of no project,
    such as vendor sign-in codes and staff emails, only for users who see every project)."""
    query = projects.scope(
        select(OutboxMessage).where(OutboxMessage.channel.in_(channels)),
        OutboxMessage.project_id,
        user,
    )
    return list(db.session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit)))

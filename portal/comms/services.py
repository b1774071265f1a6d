"""Sending SMS: a message row now, the provider call in a ``comms.sms`` job after commit (email
is queued by ``portal.comms.mail`` and delivered here too).

The row is written in the caller's transaction, so a message exists exactly when the change that
asked for it commits, and a job that fails is retried until the provider takes it. Nothing here
logs a number or a text.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from portal.comms import delivery, email, ratelimit, whatsapp
from portal.comms.models import (
    EMAIL,
    FAILED,
    QUEUED,
    REVIEW,
    SENT,
    SMS,
    WHATSAPP,
    OutboxMessage,
)
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
        key=str(uuid.uuid4()),
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


def deliver(message_id: int, claim: int | None = None, *, last_try: bool = False) -> str:
    """The ``comms.*`` jobs: hand the message to its channel's provider and log the answer.

    ``claim`` is the job's claim number (its attempts so far, this one included). A claim that
    follows an earlier one without an outcome recorded in between means that earlier run
    stopped somewhere between the provider call and its commit (a killed worker): the provider
    may have the message. It is sent again only through a provider that de-duplicates (an
    idempotency key); otherwise it goes to review, and a delivery receipt (which names the
    message) may still settle it. A timeout waiting for the provider is treated the same way.
    """
    message = db.session.get(OutboxMessage, message_id)
    if message is None:
        raise PermanentJobError("The message this job was for no longer exists.")
    if message.status != QUEUED:
        return f"already {message.status}"
    if message.purged_at is not None or message.body is None or _past_keeping(message):
        # Past its keeping time (a payment code that expired): blanked now rather than at the
        # sweeper's next pass, and never sent.
        if message.purged_at is None:
            _blank(message.id)
        delivery.move(message_id, FAILED, error="Expired before it could be sent.")
        return "expired before it could be sent"
    if message.campaign_id is not None:
        held = campaign_gate(message)
        if held:
            return held
    provider = provider_for(message.channel)
    if claim is not None and claim - 1 > message.recorded_claim and not provider.idempotent:
        return _to_review(message, "Sending was interrupted")
    try:
        ratelimit.wait_for_slot(message.channel)
    except ratelimit.SlotNotFree as exc:
        message.recorded_claim = claim or message.recorded_claim
        raise RetryKeepingWork(str(exc)) from None
    if message.key is None:
        message.key = str(uuid.uuid4())
    # Written with the message's move on success (one UPDATE); on a failure, by the session.
    tried = {"attempts": message.attempts + 1, "recorded_claim": claim or message.recorded_claim}
    try:
        ref = _send(provider, message)
    except ProviderError as exc:
        message.attempts, message.recorded_claim = tried["attempts"], tried["recorded_claim"]
        message.error = str(exc)
        message.error_code = exc.code
        if exc.unknown and not provider.idempotent:
            return _to_review(message, str(exc).rstrip("."))
        if exc.permanent or last_try:
            delivery.move(message_id, FAILED, error=str(exc), error_code=exc.code)
            settled(message)
        if exc.permanent:
            raise RefusedJob(str(exc)) from None
        # The attempt count and the provider's answer are kept with the failed attempt.
        raise RetryKeepingWork(str(exc)) from exc
    values = {"provider": provider.name, "error": None, "error_code": None, "sent_at": utcnow()}
    if ref:
        values["provider_ref"] = ref
    if not delivery.move(message_id, SENT, known=(QUEUED, message.campaign_id), **tried, **values):
        # A receipt got here first (delivered or failed): keep its word, add the provider's id.
        db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.provider_ref.is_(None))
            .values(provider_ref=ref, provider=provider.name, sent_at=values["sent_at"], **tried)
            .execution_options(synchronize_session=False)
        )
    settled(message)
    return f"sent through {provider.name}"


def _to_review(message: OutboxMessage, why: str) -> str:
    delivery.move(
        message.id,
        REVIEW,
        error=f"{why}: the provider may or may not have it. Not sent again, so nobody gets it "
        "twice; a delivery receipt will settle it, or check with the provider.",
    )
    settled(message)
    return "outcome unknown: marked for review"


def settled(message: OutboxMessage) -> None:
    """A campaign's message is no longer waiting to be sent: its campaign may be done."""
    if message.campaign_id is not None:
        from portal.campaigns import sending

        sending.finish_if_done(message.campaign_id)


def provider_for(channel: str):
    config = current_app.config
    if channel == EMAIL:
        return email.get_provider(config)
    if channel == WHATSAPP:
        return whatsapp.get_provider(config)
    return get_provider(config)


def _send(provider, message: OutboxMessage) -> str | None:
    if message.channel == EMAIL:
        return provider.send(message.recipient, message.subject, message.body, message.html_body)
    if message.channel == WHATSAPP:
        return provider.send(
            message.recipient,
            message.body,
            template=message.template or "",
            language=message.language or "en",
            key=message.key,
        )
    return provider.send(message.recipient, message.body, key=message.key)


def campaign_gate(message: OutboxMessage) -> str | None:
    """A campaign's message waits while its campaign is paused, goes no more once it is
    cancelled, and never to a number that said STOP since it was queued."""
    from portal.campaigns import sending

    return sending.gate(message)


def purge_expired(limit: int = 500) -> int:
    """Blank the text and number of messages past their keeping time; returns how many (the
    sweeper's pass; a message's own job blanks it first if it finds it past its time)."""
    now = utcnow()
    ids = list(
        db.session.scalars(
            select(OutboxMessage.id)
            .where(OutboxMessage.purge_after < now, OutboxMessage.purged_at.is_(None))
            .limit(limit)
        )
    )
    if ids:
        _blank(*ids)
    return len(ids)


def _past_keeping(message: OutboxMessage) -> bool:
    return message.purge_after is not None and message.purge_after < utcnow()


def _blank(*ids: int) -> None:
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.purged_at.is_(None))
        .values(body=None, recipient=None, subject=None, html_body=None, purged_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def recent(user, channels: tuple[str, ...] = (SMS,), limit: int = 100) -> list[OutboxMessage]:
    """The latest messages of ``channels`` in the projects the user sees (those of no project,
    such as vendor sign-in codes and staff emails, only for users who see every project)."""
    query = projects.scope(
        select(OutboxMessage).where(OutboxMessage.channel.in_(channels)),
        OutboxMessage.project_id,
        user,
    )
    return list(db.session.scalars(query.order_by(OutboxMessage.id.desc()).limit(limit)))

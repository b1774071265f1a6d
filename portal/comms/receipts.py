"""Delivery receipts: the providers' status callbacks, checked by their signatures, applied to
the delivery log.

- SMS (Twilio's scheme): ``X-Twilio-Signature`` is base64(HMAC-SHA1(auth token, the full URL
  the provider called + every POST parameter's name and value, sorted by name)). The URL is the
  one the portal gave (``PUBLIC_BASE_URL`` + path), not what a proxy made of it.
- WhatsApp (Meta's scheme): ``X-Hub-Signature-256`` is ``sha256=`` + hex(HMAC-SHA256(app
  secret, the raw body)).

A receipt only moves a message forward (``portal.comms.delivery``): repeats and receipts out of
order change nothing. Nothing here logs a number or a text.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask_babel import force_locale
from sqlalchemy import or_, select

from portal.comms import delivery, errorcodes, signatures
from portal.comms.models import DELIVERED, FAILED, QUEUED, SENT, SMS, WHATSAPP, OutboxMessage
from portal.extensions import db

# The providers' words for a message's state, in the delivery log's.
SMS_STATES = {
    "accepted": SENT,
    "queued": SENT,
    "sending": SENT,
    "sent": SENT,
    "delivered": DELIVERED,
    "read": DELIVERED,
    "undelivered": FAILED,
    "failed": FAILED,
    "canceled": FAILED,
}
WHATSAPP_STATES = {"sent": SENT, "delivered": DELIVERED, "read": DELIVERED, "failed": FAILED}


# The schemes live in ``portal.comms.signatures`` (the inbound webhooks check the same ones);
# these keep the argument order the delivery-receipt code and its tests use.
def twilio_signature(token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    return signatures.twilio_signature(url, params, token)


def twilio_valid(token: str, url: str, params: Iterable[tuple[str, str]], signature: str) -> bool:
    return signatures.twilio_valid(url, params, token, signature)


def hub_signature(secret: str, body: bytes) -> str:
    return signatures.hub_signature(body, secret)


def hub_valid(secret: str, body: bytes, signature: str) -> bool:
    return signatures.hub_valid(body, secret, signature)


def apply(
    message_id: int,
    channel: str,
    state: str,
    ref: str | None,
    code: str | None,
    known: tuple[str, int | None] | None = None,
) -> bool:
    """Move the message as the receipt says; True if it moved. ``known``: its (status, campaign
    id) as the caller read them."""
    values: dict = {}
    if ref:
        values["provider_ref"] = ref[:80]
    if state == FAILED:
        values["error_code"] = (code or "")[:20] or None
        with force_locale("en"):  # stored, as the log of record; pages describe the code
            values["error"] = (
                str(errorcodes.describe(channel, code)) or "The provider could not deliver it."
            )
    left = delivery.move(message_id, state, known=known, **values)
    if left == QUEUED:
        # Only a message that was still waiting to be sent can have been its campaign's last.
        from portal.comms.services import settled

        settled(db.session.get(OutboxMessage, message_id))
    return left is not None


def sms_receipt(key: str, form: dict[str, str]) -> bool | None:
    """A Twilio-style status callback for the message ``key``; None if no such message."""
    message = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.key == key, OutboxMessage.channel == SMS)
    )
    if message is None:
        return None
    state = SMS_STATES.get((form.get("MessageStatus") or form.get("SmsStatus") or "").lower())
    if state is None:
        return False
    ref = form.get("MessageSid") or form.get("SmsSid")
    if message.provider_ref and ref and ref != message.provider_ref:
        return False  # a receipt for another message than the one this key sent
    return apply(
        message.id, SMS, state, ref, form.get("ErrorCode"), (message.status, message.campaign_id)
    )


def webhook_values(payload) -> list[dict]:
    """The ``value`` of every change in a WhatsApp webhook body, whatever shape the body has:
    anything that is not the documented nesting of objects and lists is skipped, never a 500."""
    found = []
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if isinstance(value, dict):
                found.append(value)
    return found


def whatsapp_statuses(payload) -> list[dict]:
    """The ``statuses`` of a WhatsApp webhook body (other changes, e.g. inbound messages, are
    not receipts)."""
    found = []
    for value in webhook_values(payload):
        statuses = value.get("statuses")
        if isinstance(statuses, list):
            found.extend(s for s in statuses if isinstance(s, dict))
    return found


def whatsapp_receipts(payload: dict) -> int:
    """Apply every status in a WhatsApp webhook body; how many moved a message."""
    moved = 0
    for status in whatsapp_statuses(payload):
        state = WHATSAPP_STATES.get(str(status.get("status") or "").lower())
        ref = str(status.get("id") or "")[:80]
        key = str(status.get("biz_opaque_callback_data") or "")[:36]
        if state is None or not (ref or key):
            continue
        conditions = []
        if ref:
            conditions.append(OutboxMessage.provider_ref == ref)
        if key:
            conditions.append(OutboxMessage.key == key)
        message_id = db.session.scalar(
            select(OutboxMessage.id)
            .where(OutboxMessage.channel == WHATSAPP, or_(*conditions))
            .limit(1)
        )
        if message_id is None:
            continue
        errors = status.get("errors") if isinstance(status.get("errors"), list) else []
        code = errors[0].get("code") if errors and isinstance(errors[0], dict) else None
        if apply(message_id, WHATSAPP, state, ref or None, None if code is None else str(code)):
            moved += 1
    return moved

"""What the portal does with a message a person sends it (SMS or WhatsApp), once the webhook
has checked that the provider sent it.

- A provider message id seen before is ignored: providers retry webhooks, and the row's
  unique key makes the second delivery a no-op even when both arrive at once.
- An unknown number gets one polite generic reply, and nothing about anyone.
- STOP / START switch campaign messages off and on for the number (codes, receipts and
  balance replies still go).
- BAL (or its Nepali words, ``portal.comms.balance``) gets the balance in the person's
  language; anything else becomes a grievance, and the person gets its reference.

Every reply is counted against two caps before it is queued, keyed on the number's blind
index and on the whole portal, so a flood of messages (or forged numbers) cannot make the
portal send a flood of SMS. Over a cap the message is still handled and stored; only the
reply is withheld. Nothing here logs a number or a text.
"""

from __future__ import annotations

import logging

import phonenumbers
from sqlalchemy import select

from portal import transitions
from portal.beneficiaries.models import Beneficiary, BeneficiaryPII
from portal.campaigns import optout
from portal.campaigns.models import OptOut
from portal.comms import balance
from portal.comms.inbound_models import (
    BALANCE,
    GRIEVANCE,
    START,
    STOP,
    UNKNOWN,
    InboundMessage,
)
from portal.comms.services import send_sms
from portal.crypto import blind_index
from portal.extensions import db
from portal.quotas import services as quotas
from portal.quotas.services import Throttled
from portal.settings.services import default_country

log = logging.getLogger(__name__)

NUMBER_CAP = quotas.define(
    "inbound.reply.number", "INBOUND_REPLY_NUMBER_LIMITS", "No more replies to this number {when}."
)
UNKNOWN_CAP = quotas.define(
    "inbound.reply.unknown",
    "INBOUND_REPLY_UNKNOWN_LIMITS",
    "No more replies to this unknown number {when}.",
)
TOTAL_CAP = quotas.define(
    "inbound.reply.total", "INBOUND_REPLY_TOTAL_LIMITS", "No more replies {when}."
)
TOTAL_KEY = "all"

GENERIC_REPLY = {
    "en": "Thank you for your message. This number is not registered with our programme. "
    "Please contact your local programme office for help.",
}
OPT_REPLY = {
    STOP: {
        "en": "You will no longer receive programme announcements. Payment codes and "
        "balance replies still come. Send START to receive announcements again.",
        "ne": "तपाईंलाई अब कार्यक्रमका सूचनाहरू पठाइने छैन। भुक्तानी कोड र ब्यालेन्स जवाफ "
        "आउनेछन्। फेरि सूचना पाउन START पठाउनुहोस्।",
    },
    START: {
        "en": "You will receive programme announcements again. Send STOP to stop them.",
        "ne": "तपाईंले फेरि कार्यक्रमका सूचनाहरू पाउनुहुनेछ। रोक्न STOP पठाउनुहोस्।",
    },
}


def phone_of(raw: str) -> str:
    """The sender in E.164 where it parses (WhatsApp sends digits without the "+"), else the
    text as sent, so that its blind index is still stable for the caps."""
    text = (raw or "").strip()
    if text.startswith("whatsapp:"):
        text = text[len("whatsapp:") :]
    if text.isdigit() and len(text) > 10:
        text = "+" + text
    try:
        number = phonenumbers.parse(text, default_country())
    except phonenumbers.NumberParseException:
        return text[:40]
    if not phonenumbers.is_valid_number(number):
        return text[:40]
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_index(e164: str) -> str:
    # The beneficiaries' own index of the number: the same value joins the two tables.
    return blind_index("phone:" + e164)


def opted_out(index: str) -> bool:
    """Whether campaigns must skip the number with this blind index."""
    found = db.session.scalar(select(OptOut.id).where(OptOut.phone_index == index))
    return found is not None


def receive(
    channel: str, provider_message_id: str, sender: str, text: str
) -> InboundMessage | None:
    """Handle one inbound message in the caller's transaction; None if it was handled before."""
    e164 = phone_of(sender)
    index = phone_index(e164)
    new_id = transitions.insert_or_skip(
        InboundMessage,
        {
            "channel": channel,
            "provider_message_id": provider_message_id[:80],
            "phone_index": index,
            "kind": UNKNOWN,
            "reply_withheld": "",
        },
        returning=InboundMessage.id,
    )
    if new_id is None:
        return None
    message = db.session.get(InboundMessage, new_id)
    person = db.session.scalar(
        select(Beneficiary).join(BeneficiaryPII).where(BeneficiaryPII.phone_index == index)
    )
    # STOP and START hold for the number whoever it belongs to (it may be enrolled later):
    # one opt-out list, the campaigns' own (``portal.campaigns.optout``).
    said = optout.handle(e164, text, channel)
    if said is not None:
        message.kind = STOP if said == optout.STOPPED else START
        if person is not None:
            message.beneficiary_id = person.id
        language = (person.language if person is not None else None) or "en"
        cap = NUMBER_CAP if person is not None else UNKNOWN_CAP
        _reply(message, e164, _in(OPT_REPLY[message.kind], language), cap)
        db.session.flush()
        return message
    if person is None:
        message.kind = UNKNOWN
        _reply(message, e164, GENERIC_REPLY["en"], UNKNOWN_CAP)
        return message
    message.beneficiary_id = person.id
    language = person.language or "en"
    if balance.asks_balance(text):
        message.kind = BALANCE
        _reply(message, e164, balance.balance_reply(person, language), NUMBER_CAP)
    else:
        from portal.grievances import messages as grievance_messages
        from portal.grievances import services as grievances

        message.kind = GRIEVANCE
        grievance = grievances.open_grievance(
            channel, text or "(empty message)", beneficiary=person, tell_person=False
        )
        message.grievance_id = grievance.id
        _reply(
            message,
            e164,
            grievance_messages.text("opened", grievance.ref, language),
            NUMBER_CAP,
            project_id=grievance.project_id,
        )
    db.session.flush()
    return message


def _in(texts: dict[str, str], language: str) -> str:
    return texts.get(language, texts["en"])


def _reply(
    message: InboundMessage,
    e164: str,
    body: str,
    number_cap: quotas.Quota,
    *,
    project_id: int | None = None,
) -> None:
    """Queue ``body`` to the sender unless a cap says no; say which cap in the row."""
    withheld = take_reply(message.phone_index, number_cap)
    if withheld:
        message.reply_withheld = withheld
        # The limit being hit is worth knowing about; the number is not.
        log.warning("inbound reply withheld (%s) for message %s", withheld, message.id)
        return
    sent = send_sms(e164, body, f"inbound.reply.{message.kind}", project_id=project_id)
    message.reply_message_id = sent.id


def take_reply(index: str, number_cap: quotas.Quota) -> str:
    """Count one reply to the number and one overall, or neither: "" when both caps allow it,
    else which cap refused. The number's cap is locked first, then the total's, in every
    request, so two requests never wait on each other in a circle."""
    try:
        quotas.check(number_cap, f"phone:{index}")
    except Throttled:
        return "over the number's cap"
    try:
        quotas.check(TOTAL_CAP, TOTAL_KEY)
    except Throttled:
        return "over the overall cap"
    quotas.hit(number_cap, f"phone:{index}")
    quotas.hit(TOTAL_CAP, TOTAL_KEY)
    return ""

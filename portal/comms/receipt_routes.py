"""The providers' webhooks: delivery receipts (SMS, WhatsApp) and STOP/START replies.

Public (a provider cannot sign in) and without CSRF (a provider posts no form token): the
provider's signature is the authentication, checked before anything is read. A bad signature is
a 403, logged with the path only, never the body (numbers, texts).
"""

from __future__ import annotations

import hmac
import json
import logging
from xml.sax.saxutils import escape

from flask import Blueprint, Response, current_app, request

from portal.accounts.guards import public
from portal.beneficiaries.normalize import InvalidValue, phone_e164
from portal.campaigns import optout
from portal.comms import receipts
from portal.comms.providers import RECEIPT_PATH
from portal.extensions import csrf, limiter
from portal.settings.services import default_country
from portal.web import problem

log = logging.getLogger(__name__)
bp = Blueprint("comms_receipts", __name__)
WHATSAPP_PATH = "/api/comms/receipts/whatsapp"
INBOUND_SMS_PATH = "/api/comms/inbound/sms"
# Per address: a provider sends bursts of receipts for a campaign; anyone else gets 403s.
LIMIT = "6000 per minute"


def _signed_url() -> str:
    """The URL as the provider called it: the public address the portal gave it."""
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    query = request.query_string.decode("latin-1")
    return f"{base}{request.path}" + (f"?{query}" if query else "")


def _twilio_signed() -> bool:
    params = [(name, value) for name, values in request.form.lists() for value in values]
    return receipts.twilio_valid(
        current_app.config.get("SMS_TOKEN") or "",
        _signed_url(),
        params,
        request.headers.get("X-Twilio-Signature", ""),
    )


def _refuse(what: str):
    log.warning("%s refused: bad or missing signature (path %s)", what, request.path)
    return problem(403, "The signature does not match.")


@bp.post(f"{RECEIPT_PATH}/<string(length=36):key>")
@public
@csrf.exempt
@limiter.limit(LIMIT)
def sms_receipt(key: str):
    if not _twilio_signed():
        return _refuse("SMS receipt")
    found = receipts.sms_receipt(key, request.form.to_dict())
    if found is None:
        return problem(404, "No message has this key.")
    return Response(status=204)


@bp.get(WHATSAPP_PATH)
@public
@limiter.limit("60 per minute")
def whatsapp_verify():
    """The Cloud API's subscription check: echo the challenge to whoever knows the token."""
    expected = current_app.config.get("WHATSAPP_VERIFY_TOKEN") or ""
    given = request.args.get("hub.verify_token", "")
    if request.args.get("hub.mode") != "subscribe" or not expected or not _same(given, expected):
        return problem(403, "The verify token does not match.")
    challenge = request.args.get("hub.challenge", "")[:200]
    return Response(challenge, mimetype="text/plain")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


@bp.post(WHATSAPP_PATH)
@public
@csrf.exempt
@limiter.limit(LIMIT)
def whatsapp_webhook():
    body = request.get_data(cache=False)
    if not receipts.hub_valid(
        current_app.config.get("WHATSAPP_APP_SECRET") or "",
        body,
        request.headers.get("X-Hub-Signature-256", ""),
    ):
        return _refuse("WhatsApp webhook")
    try:
        payload = json.loads(body)
    except ValueError:
        return problem(400, "The body is not JSON.")
    if not isinstance(payload, dict):
        return problem(400, "The body is not a JSON object.")
    moved = receipts.whatsapp_receipts(payload)
    for number, text in _whatsapp_texts(payload):
        try:
            optout.handle(phone_e164("+" + number.lstrip("+"), default_country()), text, "whatsapp")
        except InvalidValue:
            continue
    return {"moved": moved}


def _whatsapp_texts(payload: dict) -> list[tuple[str, str]]:
    found = []
    for entry in payload.get("entry") or []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes or []:
            value = change.get("value") if isinstance(change, dict) else None
            for message in (value or {}).get("messages") or [] if isinstance(value, dict) else []:
                if not isinstance(message, dict) or message.get("type") != "text":
                    continue
                text = (message.get("text") or {}).get("body")
                if isinstance(message.get("from"), str) and isinstance(text, str):
                    found.append((message["from"], text))
    return found


@bp.post(INBOUND_SMS_PATH)
@public
@csrf.exempt
@limiter.limit(LIMIT)
def inbound_sms():
    """A reply to the portal's number. STOP and START are acted on and confirmed here (other
    texts are for the inbound-message features: answered with an empty reply)."""
    if not _twilio_signed():
        return _refuse("Inbound SMS")
    reply = None
    try:
        number = phone_e164(request.form.get("From", ""), default_country())
    except InvalidValue:
        number = None
    if number:
        done = optout.handle(number, request.form.get("Body", ""), "sms")
        reply = optout.REPLIES.get(done) if done else None
    inner = f"<Message>{escape(reply)}</Message>" if reply else ""
    return Response(
        f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>',
        mimetype="text/xml",
    )

"""The providers' webhooks: delivery receipts (SMS, WhatsApp) and WhatsApp messages.

Public (a provider cannot sign in) and without CSRF (a provider posts no form token): the
provider's signature is the authentication, checked before anything is read. A bad signature is
a 403, logged with the path only, never the body (numbers, texts).
"""

from __future__ import annotations

import hmac
import json
import logging

from flask import Blueprint, Response, current_app, request

from portal.accounts.guards import public
from portal.comms import inbound, inbound_routes, receipts
from portal.comms.providers import RECEIPT_PATH
from portal.extensions import csrf, limiter
from portal.web import problem

log = logging.getLogger(__name__)
bp = Blueprint("comms_receipts", __name__)
# One webhook for the WhatsApp app: Meta posts delivery statuses and people's messages to the
# same address, so both are read here (messages by ``portal.comms.inbound``).
WHATSAPP_PATH = "/api/inbound/whatsapp"
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
    received = 0
    for message_id, sender, text in inbound_routes.whatsapp_messages(payload):
        if inbound.receive("whatsapp", message_id, sender, text[: inbound_routes.MAX_TEXT]):
            received += 1
    return {"moved": moved, "received": received}

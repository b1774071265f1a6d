"""The providers' inbound webhooks: Twilio-shaped SMS here; WhatsApp messages arrive on the
WhatsApp webhook with its delivery statuses (``portal.comms.receipt_routes``).

Neither provider can sign in, so each call proves itself with the provider's signature over
what it sent, checked before anything is read into the database: a bad or missing signature
is a 403 and nothing is stored. What a message means is decided in ``portal.comms.inbound``.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request

from portal.accounts.guards import public
from portal.comms import inbound, receipts, signatures
from portal.extensions import csrf, limiter
from portal.web import problem

bp = Blueprint("inbound", __name__, url_prefix="/api/inbound")
SMS, WHATSAPP = "sms", "whatsapp"
# An SMS is at most ten segments of text as phones send it; more is not a message.
MAX_TEXT = 1600
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _public_url() -> str:
    """The URL the provider called, as it knows it: behind a proxy the portal's own view of
    the host and scheme differs, so the configured public address is what was signed."""
    base = (current_app.config.get("PUBLIC_BASE_URL") or "").rstrip("/")
    query = request.query_string.decode("latin-1")
    return base + request.path + (f"?{query}" if query else "")


def _sms_token() -> str | None:
    return current_app.config.get("INBOUND_SMS_AUTH_TOKEN") or current_app.config.get("SMS_TOKEN")


@bp.post("/sms")
@public  # the provider cannot sign in: the X-Twilio-Signature over the call is checked here
@csrf.exempt
@limiter.limit(lambda: current_app.config["INBOUND_WEBHOOK_RATE_LIMIT"])
def sms():
    params = list(request.form.items(multi=True))
    if not signatures.twilio_valid(
        _public_url(), params, _sms_token(), request.headers.get("X-Twilio-Signature")
    ):
        return problem(403, "The request is not signed by the SMS provider.")
    sid, sender = request.form.get("MessageSid", ""), request.form.get("From", "")
    if not sid or not sender:
        return problem(400, "MessageSid and From are required.")
    inbound.receive(SMS, sid, sender, request.form.get("Body", "")[:MAX_TEXT])
    # An empty TwiML answer: the reply, if any, goes through the portal's own queue and caps.
    return EMPTY_TWIML, 200, {"Content-Type": "text/xml; charset=utf-8"}


def whatsapp_messages(payload) -> list[tuple[str, str, str]]:
    """(message id, sender, text) of each message in a Cloud API notification; statuses
    (delivery receipts) and anything malformed are skipped."""
    found = []
    for value in receipts.webhook_values(payload):
        items = value.get("messages")
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            message_id, sender = item.get("id"), item.get("from")
            if not isinstance(message_id, str) or not isinstance(sender, str):
                continue
            found.append((message_id, sender, _text_of(item)))
    return found


def _text_of(item: dict) -> str:
    kind = item.get("type")
    holder = item.get(kind) if isinstance(kind, str) else None
    for key in ("body", "text", "caption"):
        value = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(value, str) and value.strip():
            return value
    # A photo or a voice note without words still means the person tried to reach us.
    shown = kind if isinstance(kind, str) and kind.isalpha() else "WhatsApp"
    return f"(a WhatsApp message with no text: {shown[:20]})"

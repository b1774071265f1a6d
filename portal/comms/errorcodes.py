"""Providers' error codes in words, for the delivery log (staff read it, not engineers)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

SMS_CODES = {
    "21211": _l("The phone number is not valid."),
    "21408": _l("Sending to this country is not enabled on the SMS account."),
    "21610": _l("The person replied STOP to the SMS provider and cannot be texted."),
    "21614": _l("The number cannot receive SMS (a landline?)."),
    "30001": _l("The SMS provider's queue was full."),
    "30002": _l("The SMS account is suspended."),
    "30003": _l("The phone was off or out of reach."),
    "30004": _l("The message was blocked (the person or their network refuses it)."),
    "30005": _l("The number is unknown to the network (no longer in use?)."),
    "30006": _l("The number is a landline or its network cannot be reached."),
    "30007": _l("The network filtered the message as unwanted."),
    "30008": _l("The network did not say why it failed."),
}
WHATSAPP_CODES = {
    "130429": _l("WhatsApp's sending rate was exceeded."),
    "131026": _l(
        "The person cannot receive this WhatsApp message (no WhatsApp, old app or "
        "not accepted the terms)."
    ),
    "131047": _l("More than 24 hours since the person last wrote: only a template may be sent."),
    "131048": _l("WhatsApp limited sending as possible spam."),
    "131049": _l("WhatsApp did not deliver it to keep engagement healthy."),
    "131050": _l("The person stopped marketing messages from this business."),
    "131051": _l("WhatsApp does not support this kind of message."),
    "131056": _l("Too many messages to this person in a short time."),
    "132000": _l("The template's parameters do not match the approved template."),
    "132001": _l("The template does not exist in that language or is not approved."),
    "132015": _l("The template is paused for low quality."),
    "133010": _l("The business phone number is not registered with WhatsApp."),
}
_BY_CHANNEL = {"sms": SMS_CODES, "whatsapp": WHATSAPP_CODES}


def describe(channel: str, code: str | None) -> str:
    """The code's meaning, or its number when the meaning is not known here."""
    if not code:
        return ""
    words = _BY_CHANNEL.get(channel, {}).get(str(code))
    if words:
        return _("%(meaning)s (code %(code)s)", meaning=words, code=code)
    return _("Provider error code %(code)s.", code=code)

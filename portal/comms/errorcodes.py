"""Providers' error codes in words, for the delivery log (staff read it, not engineers)."""

from __future__ import annotations

SMS_CODES = {
    "21211": "The phone number is not valid.",
    "21408": "Sending to this country is not enabled on the SMS account.",
    "21610": "The person replied STOP to the SMS provider and cannot be texted.",
    "21614": "The number cannot receive SMS (a landline?).",
    "30001": "The SMS provider's queue was full.",
    "30002": "The SMS account is suspended.",
    "30003": "The phone was off or out of reach.",
    "30004": "The message was blocked (the person or their network refuses it).",
    "30005": "The number is unknown to the network (no longer in use?).",
    "30006": "The number is a landline or its network cannot be reached.",
    "30007": "The network filtered the message as unwanted.",
    "30008": "The network did not say why it failed.",
}
WHATSAPP_CODES = {
    "130429": "WhatsApp's sending rate was exceeded.",
    "131026": "The person cannot receive this WhatsApp message (no WhatsApp, old app or "
    "not accepted the terms).",
    "131047": "More than 24 hours since the person last wrote: only a template may be sent.",
    "131048": "WhatsApp limited sending as possible spam.",
    "131049": "WhatsApp did not deliver it to keep engagement healthy.",
    "131050": "The person stopped marketing messages from this business.",
    "131051": "WhatsApp does not support this kind of message.",
    "131056": "Too many messages to this person in a short time.",
    "132000": "The template's parameters do not match the approved template.",
    "132001": "The template does not exist in that language or is not approved.",
    "132015": "The template is paused for low quality.",
    "133010": "The business phone number is not registered with WhatsApp.",
}
_BY_CHANNEL = {"sms": SMS_CODES, "whatsapp": WHATSAPP_CODES}


def describe(channel: str, code: str | None) -> str:
    """The code's meaning, or its number when the meaning is not known here."""
    if not code:
        return ""
    words = _BY_CHANNEL.get(channel, {}).get(str(code))
    return f"{words} (code {code})" if words else f"Provider error code {code}."

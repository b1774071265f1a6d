"""STOP: a number that replies STOP (or its Nepali word) gets no more campaigns.

Only campaigns: payment codes, receipts and balance replies are what the person needs to use
their entitlement, and still go. START (or its Nepali word) undoes it. Keywords are matched on
the whole message, trimmed and case-folded, as carriers do, so "stop by the shop" is not one.
"""

from __future__ import annotations

import unicodedata

from sqlalchemy import delete, select

from portal.campaigns.models import OptOut
from portal.campaigns.sending import phone_index
from portal.extensions import db
from portal.transitions import insert_or_skip

STOP_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "रोक", "रोक्नुहोस्", "बन्द"}
)
START_WORDS = frozenset({"start", "unstop", "subscribe", "yes", "सुरु", "सुरू"})
STOPPED, STARTED = "stopped", "started"
REPLIES = {
    STOPPED: "You will get no more information messages. Payment codes still come. "
    "Reply START to get them again.",
    STARTED: "You will get information messages again. Reply STOP to end them.",
}


def keyword(text: str) -> str | None:
    """STOPPED or STARTED when the whole message is one of the words, else None."""
    word = unicodedata.normalize("NFC", (text or "").strip().strip(".!")).casefold()
    if word in STOP_WORDS:
        return STOPPED
    if word in START_WORDS:
        return STARTED
    return None


def is_opted_out(e164: str) -> bool:
    found = db.session.scalar(select(OptOut.id).where(OptOut.phone_index == phone_index(e164)))
    return found is not None


def handle(e164: str, text: str, channel: str = "sms") -> str | None:
    """Act on a STOP or START from ``e164``; what was done (None: not a keyword)."""
    found = keyword(text)
    if found == STOPPED:
        word = unicodedata.normalize("NFC", text.strip()).casefold()[:20]
        insert_or_skip(
            OptOut, {"phone_index": phone_index(e164), "keyword": word, "channel": channel}
        )
    elif found == STARTED:
        db.session.execute(delete(OptOut).where(OptOut.phone_index == phone_index(e164)))
    return found

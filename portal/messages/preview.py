"""What a template will look like on the phone: the text with example values, its length in
SMS segments and what one message costs at the configured price per segment."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from portal.messages import kinds, notices, segments, templates
from portal.money import amounts

PRICE_DECIMALS = 4  # SMS prices are quoted to the hundredth of a cent


@dataclass(frozen=True)
class Preview:
    text: str
    length: segments.Length
    cost: str


def price_per_segment() -> int:
    """The configured price in ten-thousandths of the price currency."""
    return amounts.parse(
        current_app.config.get("SMS_PRICE_PER_SEGMENT") or "0", PRICE_DECIMALS, allow_zero=True
    )


def cost_text(segment_count: int, language: str | None = None) -> str:
    return amounts.money(
        price_per_segment() * segment_count,
        PRICE_DECIMALS,
        current_app.config.get("SMS_PRICE_CURRENCY"),
        language,
    )


def build(kind: kinds.Kind, language: str, body: str, currency: str = "NPR") -> Preview:
    """The preview of ``body`` (already checked by ``templates.problems``), in ``language``."""
    values = {name: kinds.SAMPLE[name] for name in kind.placeholders}
    text = templates.fill(body, notices.written(values, language, decimals=2, currency=currency))
    length = segments.measure(text)
    return Preview(text, length, cost_text(length.segments))

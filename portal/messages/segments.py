"""How many SMS an SMS text costs: GSM-7 when every character is in the GSM 03.38 alphabet
(the extension table's characters take two septets), else UCS-2.

One message holds 160 GSM-7 septets or 70 UCS-2 code units; a longer text is split into parts
of 153 or 67 (the rest of each part is the header that joins them). A part never splits an
escape pair or a surrogate pair, so counting is done part by part, not by division.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7, UCS2 = "GSM-7", "UCS-2"
SINGLE = {GSM7: 160, UCS2: 70}
PART = {GSM7: 153, UCS2: 67}


@dataclass(frozen=True)
class Length:
    encoding: str
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    characters: int


def encoding_of(text: str) -> str:
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        return GSM7
    return UCS2


def _sizes(text: str, encoding: str) -> list[int]:
    if encoding == GSM7:
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def measure(text: str) -> Length:
    encoding = encoding_of(text)
    sizes = _sizes(text, encoding)
    units = sum(sizes)
    if units == 0:
        return Length(encoding, 0, 0, 0)
    if units <= SINGLE[encoding]:
        return Length(encoding, units, 1, len(text))
    segments, used = 1, 0
    for size in sizes:
        if used + size > PART[encoding]:
            segments, used = segments + 1, 0
        used += size
    return Length(encoding, units, segments, len(text))

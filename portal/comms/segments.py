"""How many SMS a text costs: GSM-7 when every character is in the GSM 03.38 alphabets, UCS-2
(UTF-16) otherwise, which is always the case for Nepali.

One SMS carries 160 GSM-7 characters or 70 UTF-16 units; a longer text is split into parts of
153 or 67 (each part gives up room for the header that joins them). Characters of the GSM
extension table take two places, and so do UTF-16 surrogate pairs (emoji).
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "^{}\\[~]|€\f"
_BASIC = frozenset(GSM7)
_EXTENDED = frozenset(GSM7_EXTENSION)
GSM, UCS2 = "GSM-7", "UCS-2"
LIMITS = {GSM: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class Length:
    encoding: str
    units: int  # places taken: septets for GSM-7, UTF-16 units for UCS-2
    segments: int
    per_segment: int

    @property
    def left_in_segment(self) -> int:
        return self.segments * self.per_segment - self.units if self.units else self.per_segment


def measure(text: str) -> Length:
    """The encoding, length and number of SMS of ``text``."""
    if all(ch in _BASIC or ch in _EXTENDED for ch in text):
        encoding = GSM
        units = sum(2 if ch in _EXTENDED else 1 for ch in text)
    else:
        encoding = UCS2
        units = len(text.encode("utf-16-le")) // 2
    single, part = LIMITS[encoding]
    if units <= single:
        return Length(encoding, units, 1 if units else 0, single)
    return Length(encoding, units, -(-units // part), part)

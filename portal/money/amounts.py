"""Token amounts as people type and read them, and as the ledger stores them (base units).

``parse`` is the only way typed text becomes an amount, and ``format`` the only way an amount
becomes text, so whatever the portal shows can be typed back. What is accepted: ASCII digits or
Devanagari digits (not mixed), ``.`` as the decimal point, and ``,`` only between valid digit
groups: 3-digit groups (``1,234,567.50``) or the 2-2-3 groups Nepali and Indian formats print
(``12,34,567.50``). Nothing is ever rounded: more fraction digits than the token has is refused.
The work is integer arithmetic on a length-bounded string, never ``Decimal``, so no input
(exponents, a million digits) can be slow or overflow.
"""

from __future__ import annotations

import re
import unicodedata

from flask import current_app, has_app_context, has_request_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from portal.errors import ValidationFailed

# Longest text looked at, padding included: the largest amount accepted, in any locale and with
# any decimals allowed here, is at most 38 characters (tests hold it to that).
MAX_TEXT = 64
# What a token's ``decimals`` may be here (ERC-20 allows 255; nobody sane uses more than 18).
MAX_DECIMALS = 36
UINT256_MAX = 2**256 - 1  # what the token contract can count
COLUMN_MAX = 2**63 - 1  # what a BIGINT column holds: one amount, and the sums kept of them
# A sane upper bound on one amount typed in the portal, in whole tokens; ``AMOUNT_MAX_UNITS``.
DEFAULT_MAX_UNITS = 10**11

ASCII_DIGITS = "0123456789"
DEVANAGARI_DIGITS = "०१२३४५६७८९"
_TO_ASCII = str.maketrans(DEVANAGARI_DIGITS, ASCII_DIGITS)
_TO_DEVANAGARI = str.maketrans(ASCII_DIGITS, DEVANAGARI_DIGITS)

WESTERN = "western"  # 1,234,567
INDIAN = "indian"  # 12,34,567 (Nepali and Indian formats)
# locale -> (grouping, digits). Unknown locales are a programming error, not user input.
LOCALES = {
    "en": (WESTERN, ASCII_DIGITS),
    "hi": (INDIAN, ASCII_DIGITS),
    "ne": (INDIAN, DEVANAGARI_DIGITS),
}

# Page languages that write amounts their own way; the others follow ``AMOUNT_LOCALE``.
PAGE_AMOUNT_LOCALES = {"ne": "ne"}

_GROUPED = re.compile(r"[1-9][0-9]{0,2}(?:,[0-9]{3})+|[1-9][0-9]?(?:,[0-9]{2})*,[0-9]{3}")
_SIGNS = "+-\u2212\u2010\u2011\u2012\u2013\u2014\ufe63\uff0b\uff0d"

# What to type, in the page's language (the digits too: ``parse`` reads 0-9 and ०-९ alike).
EXAMPLE = _l("e.g. 1500, 1,500 or 12.50")


class AmountError(ValidationFailed):
    """Not an amount, or not one allowed here; the message says what to type instead.

    A ``ValidationFailed`` on the ``amount`` field, so a service that checks an amount gives
    the form the same field error the field itself would have given.
    """

    def __init__(self, message: str, field: str = "amount"):
        super().__init__({field: message})
        self.message = message


def default_locale() -> str:
    """How the portal writes amounts unless told otherwise: a page in Nepali in Nepali digits
    and grouping (the page language, ``portal.i18n``), else ``AMOUNT_LOCALE`` (en, hi, ne)."""
    if not has_app_context():
        return "en"
    if has_request_context():
        from flask_babel import get_locale

        page = get_locale()
        if page is not None and page.language in PAGE_AMOUNT_LOCALES:
            return PAGE_AMOUNT_LOCALES[page.language]
    return current_app.config.get("AMOUNT_LOCALE") or "en"


def max_units() -> int:
    """The configured upper bound on one amount, in whole tokens."""
    if has_app_context():
        return int(current_app.config.get("AMOUNT_MAX_UNITS", DEFAULT_MAX_UNITS))
    return DEFAULT_MAX_UNITS


def ceiling(decimals: int) -> int:
    """The largest amount accepted, in base units: configured bound, column, uint256."""
    _check_decimals(decimals)
    return min(max_units() * 10**decimals, COLUMN_MAX, UINT256_MAX)


def parse(text: str | None, decimals: int, *, allow_zero: bool = False) -> int:
    """Typed text to base units, or ``AmountError`` with what to type instead."""
    _check_decimals(decimals)
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise AmountError(_("Enter an amount, %(example)s.", example=EXAMPLE))
    if len(text) > MAX_TEXT:
        raise AmountError(
            _("That is too long for an amount. Type it in digits, %(example)s.", example=EXAMPLE)
        )
    text = text.strip()
    if not text:
        raise AmountError(_("Enter an amount, %(example)s.", example=EXAMPLE))
    _check_characters(text)
    whole, _point, fraction = text.translate(_TO_ASCII).partition(".")
    if not whole and not fraction:
        raise AmountError(_("Enter an amount, %(example)s.", example=EXAMPLE))
    if "." in fraction:
        raise AmountError(
            _(
                "Use one point, before the fraction; commas go between groups of digits "
                "(%(example)s).",
                example=EXAMPLE,
            )
        )
    if "," in fraction:
        raise AmountError(_("No commas after the decimal point (%(example)s).", example=EXAMPLE))
    if "," in whole:
        if not _GROUPED.fullmatch(whole):
            raise AmountError(
                _(
                    "A comma is out of place. Type the amount without commas (1500), or with "
                    "commas between groups of three digits (1,234,567) or in the Nepali way "
                    "(12,34,567). Use a point for the fraction: 12.50."
                )
            )
        whole = whole.replace(",", "")
    if len(fraction) > decimals:
        if decimals == 0:
            raise AmountError(_("Whole numbers only: this project counts in whole units."))
        raise AmountError(
            ngettext(
                "At most %(count)s digit after the decimal point.",
                "At most %(count)s digits after the decimal point.",
                decimals,
                count=format(decimals, 0),
            )
        )
    base = int(whole or "0") * 10**decimals + int(fraction.ljust(decimals, "0") or "0")
    return check(base, decimals, allow_zero=allow_zero)


def check(base: int, decimals: int, *, allow_zero: bool = False) -> int:
    """The same bounds as ``parse``, for an amount that arrives already in base units."""
    if isinstance(base, bool) or not isinstance(base, int):
        raise AmountError(_("Enter an amount, %(example)s.", example=EXAMPLE))
    if base < 0:
        raise AmountError(_("Type the amount without a sign; it cannot be negative."))
    if base == 0 and not allow_zero:
        raise AmountError(_("The amount must be more than zero."))
    top = ceiling(decimals)
    if base > top:
        raise AmountError(_("At most %(amount)s in one amount.", amount=format(top, decimals)))
    return base


def format(base: int | None, decimals: int, locale: str | None = None) -> str:
    """Base units to text with every fraction digit shown: 150050, 2 → ``1,500.50``."""
    if base is None:
        return "–"
    _check_decimals(decimals)
    locale = locale or default_locale()
    if locale not in LOCALES:
        raise ValueError(f"amounts are written in {', '.join(LOCALES)}, not {locale!r}")
    grouping, digits = LOCALES[locale]
    sign = "-" if base < 0 else ""  # only ever a shortfall shown; a sign is never typed back
    whole, fraction = divmod(abs(int(base)), 10**decimals)
    text = _group(str(whole), grouping)
    if decimals:
        text += "." + str(fraction).rjust(decimals, "0")
    if digits is DEVANAGARI_DIGITS:
        text = text.translate(_TO_DEVANAGARI)
    return sign + text


def money(base: int | None, decimals: int, currency: str | None, locale: str | None = None) -> str:
    """An amount as staff and vendors read it, in the project's currency: ``NPR 1,500.50``.

    The token is a detail of how the value is held: pages name the currency, never the token's
    symbol. A no-break space keeps the currency beside its figure in a narrow table cell.
    """
    text = format(base, decimals, locale)
    if base is None or not currency:
        return text
    return f"{currency}\u00a0{text}"


def plain(base: int, decimals: int) -> str:
    """Base units to machine text for files and APIs: ASCII digits, a point, every fraction
    digit, no grouping (150050, 2 → ``1500.50``); ``parse`` reads it back."""
    _check_decimals(decimals)
    whole, fraction = divmod(int(base), 10**decimals)
    return f"{whole}.{str(fraction).rjust(decimals, '0')}" if decimals else str(whole)


def hint(decimals: int) -> str:
    """What to type, for a field's description."""
    if decimals == 0:
        return _("Whole numbers, e.g. 1500 or 1,500.")
    return _(
        "Digits, with a point for the fraction (at most %(num)s after it), "
        "e.g. 1500, 1,500 or %(example)s.",
        num=format(decimals, 0),
        example=format(12 * 10**decimals + 5 * 10 ** (decimals - 1), decimals),
    )


def _group(digits: str, grouping: str) -> str:
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    size = 3 if grouping == WESTERN else 2
    groups = []
    while len(head) > size:
        groups.insert(0, head[-size:])
        head = head[:-size]
    return ",".join([head, *groups, tail])


def _check_decimals(decimals: int) -> None:
    if isinstance(decimals, bool) or not isinstance(decimals, int):
        raise TypeError("decimals must be an int")
    if not 0 <= decimals <= MAX_DECIMALS:
        raise ValueError(f"decimals must be between 0 and {MAX_DECIMALS}")


def _check_characters(text: str) -> None:
    """Refuse anything but digits of one system, commas and points, saying what to type."""
    ascii_seen = devanagari_seen = False
    for char in text:
        if char in ASCII_DIGITS:
            ascii_seen = True
        elif char in DEVANAGARI_DIGITS:
            devanagari_seen = True
        elif char in ",.":
            continue
        elif char in _SIGNS:
            raise AmountError(_("Type the amount without a sign: %(example)s.", example=EXAMPLE))
        elif char in "eE" and any(c in ASCII_DIGITS or c in DEVANAGARI_DIGITS for c in text):
            raise AmountError(
                _(
                    "Type the amount in full digits, without an exponent: %(example)s.",
                    example=EXAMPLE,
                )
            )
        elif char.isspace():
            raise AmountError(
                _(
                    "Leave no spaces inside the amount; use commas between groups of digits, "
                    "or none (%(example)s).",
                    example=EXAMPLE,
                )
            )
        elif unicodedata.category(char) == "Nd" or char.isdigit():
            raise AmountError(_("Use the digits 0-9 or ०-९."))
        else:
            raise AmountError(
                _(
                    "Type only digits, a point for the fraction and commas between groups "
                    "(%(example)s).",
                    example=EXAMPLE,
                )
            )
    if ascii_seen and devanagari_seen:
        raise AmountError(_("Use one kind of digits: 0-9 or ०-९, not both."))
    if not (ascii_seen or devanagari_seen):
        raise AmountError(_("Enter an amount in digits, %(example)s.", example=EXAMPLE))

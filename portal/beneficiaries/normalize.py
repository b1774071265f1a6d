"""Normalising personal data before it is encrypted or hashed, so equal people hash equal."""

from __future__ import annotations

import re
import unicodedata
from datetime import date

import phonenumbers

from portal import dateranges
from portal.errors import DomainError

_ID_OK = re.compile(r"^[A-Za-z0-9]{4,32}$")
_ASCII_SEPARATORS = re.compile(r"[\s\-./]")


class InvalidValue(DomainError):
    status = 400

    def __init__(self, field: str, message: str, code: str = "", values: dict | None = None):
        super().__init__(message)
        self.field = field
        # For an import's report, written later in its reader's language (imports.problems).
        self.code, self.values = code, values


def phone_e164(raw: str, default_country: str) -> str:
    try:
        number = phonenumbers.parse((raw or "").strip(), default_country)
    except phonenumbers.NumberParseException:
        raise InvalidValue("phone", "Not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue(
            "phone",
            f"Not a valid phone number for {default_country}.",
            code="phone_invalid",
            values={"country": default_country},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _id_character(ch: str) -> str:
    """One character of a typed ID: a digit of any script as ASCII, a fullwidth letter as ASCII,
    a space or dash of any kind (and . /) dropped; anything else kept, to be refused."""
    if ch.isascii():
        return "" if ch.isspace() or ch in "-./" else ch
    category = unicodedata.category(ch)
    if category == "Nd":
        return str(unicodedata.decimal(ch))
    if category in ("Zs", "Pd") or ch.isspace() or ch == "\u2212":  # spaces, dashes, minus
        return ""
    if "\uff01" <= ch <= "\uff5e":  # fullwidth forms of ASCII, as East Asian keyboards type
        folded = unicodedata.normalize("NFKC", ch)
        return "" if folded in "-./" else folded
    return ch


def national_id(raw: str | None) -> str | None:
    """The ID in one spelling (ASCII letters upper case, ASCII digits, no separators), so every
    spelling of one ID has one blind index."""
    if raw is None or not raw.strip():
        return None
    if raw.isascii():  # most IDs: at import speed
        value = _ASCII_SEPARATORS.sub("", raw)
    else:
        value = "".join(_id_character(ch) for ch in raw[:200])
    # Checked before upper(): it turns some non-ASCII letters into ASCII ones ("ß" -> "SS").
    if len(raw) > 200 or not _ID_OK.match(value):
        raise InvalidValue("national_id", "Use 4 to 32 letters and digits.")
    return value.upper()


def date_of_birth(value: date | None, today: date | None = None) -> str | None:
    if value is None:
        return None
    if problem := dateranges.BIRTH.problem(value, today):
        raise InvalidValue("date_of_birth", problem)
    return value.isoformat()

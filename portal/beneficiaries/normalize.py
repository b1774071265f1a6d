"""Normalising personal data before it is encrypted or hashed, so equal people hash equal."""

from __future__ import annotations

import re
from datetime import date

import phonenumbers

from portal.errors import DomainError

_ID_STRIP = re.compile(r"[\s\-./]")
_ID_OK = re.compile(r"^[A-Z0-9]{4,32}$")


class InvalidValue(DomainError):
    status = 400

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def phone_e164(raw: str, default_country: str) -> str:
    try:
        number = phonenumbers.parse((raw or "").strip(), default_country)
    except phonenumbers.NumberParseException:
        raise InvalidValue("phone", "Not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("phone", f"Not a valid phone number for {default_country}.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def national_id(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    value = _ID_STRIP.sub("", raw).upper()
    if not _ID_OK.match(value):
        raise InvalidValue("national_id", "Use 4 to 32 letters and digits.")
    return value


def date_of_birth(value: date | None) -> str | None:
    if value is None:
        return None
    if value > date.today() or value.year < 1900:
        raise InvalidValue("date_of_birth", "Date of birth must be in the past.")
    return value.isoformat()

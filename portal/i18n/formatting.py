"""Dates and numbers as the page's locale writes them, with that locale's own digits.

Babel writes the words and the order (month names, date patterns, grouping) and names the
digits a locale uses (``deva`` for Nepali); it writes only Latin digits itself, so the digits
are mapped here, after Babel. Amounts of money are not written here: ``portal.money.amounts``
is the one place that writes (and reads back) an amount.
"""

from __future__ import annotations

from datetime import date, datetime

from babel import dates, numbers
from flask_babel import get_locale

from portal.i18n.locales import DEFAULT, to_native_digits


def _code() -> str:
    locale = get_locale()
    return str(locale) if locale is not None else DEFAULT


def page_code() -> str:
    """The page's locale code (``en`` outside a request)."""
    return _code()


def digits(text: str | None) -> str:
    """Text whose digits are written in the page's own (a clock time, an id)."""
    if text is None:
        return ""
    return to_native_digits(str(text), _code())


def when(value: datetime | None) -> str:
    """A moment, date and time to the minute, in UTC (the portal's one time zone)."""
    if value is None:
        return ""
    code = _code()
    if code == DEFAULT:
        # English keeps the sortable form staff already read in tables and exports.
        return value.strftime("%Y-%m-%d %H:%M UTC")
    on_day = dates.format_date(value, "medium", locale=code)
    text = f"{on_day} {dates.format_time(value, 'HH:mm', locale=code)} UTC"
    return to_native_digits(text, code)


def day(value: date | None) -> str:
    if value is None:
        return ""
    code = _code()
    if code == DEFAULT:
        return value.strftime("%Y-%m-%d")
    return to_native_digits(dates.format_date(value, "medium", locale=code), code)


def short_when(value: datetime | None) -> str:
    """Day, month and time for a phone's list row: "4 Dec 10:05", "४ डिसेम्बर १०:०५"."""
    if value is None:
        return ""
    code = _code()
    on_day = dates.format_skeleton("MMMd", value, locale=code)
    text = f"{on_day} {dates.format_time(value, 'HH:mm', locale=code)}"
    return to_native_digits(text, code)


def number(value: int | float | None) -> str:
    """A count (not an amount of money), grouped and in the locale's digits."""
    if value is None:
        return ""
    code = _code()
    return to_native_digits(numbers.format_decimal(value, locale=code), code)

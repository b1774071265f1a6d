"""The one input rule for text, and typed parsing of query parameters.

Text from any entry (form field, query parameter, socket payload, exported cell) may not hold
C0/C1 control characters (NUL, ESC, BEL, DEL...), lone surrogates or U+FFFD, the character a
decoder puts where the bytes were not UTF-8. PostgreSQL refuses NUL, and terminals and
spreadsheets act on ESC and BEL, so they are refused at the door and never stored. Multi-line
text keeps tab, newline and carriage return.

Query parameters are parsed by kind (id, page, date, choice, text); a value that is not of its
kind is answered with 400 and a sentence naming the parameter, never passed on to the database.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping
from datetime import date

from flask import request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import BadRequest

# Primary keys are PostgreSQL "integer" columns; a bigger number can name no row.
MAX_ID = 2**31 - 1
# Pages past this are never linked; OFFSET beyond would only make the database read in vain.
MAX_PAGE = 100_000
# Dates in filters and forms: wide enough for any birth date or project, narrow enough that
# adding a day (an "until" filter is exclusive of the next day) never leaves the calendar.
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2199, 12, 31)

CONTROL_MESSAGE = "contains a control character; remove it"
NOT_TEXT_MESSAGE = "contains characters that are not valid text (not UTF-8); retype it"
MULTILINE_ALLOWED = frozenset("\t\n\r")
_REPLACEMENT = "\ufffd"


def text_problem(value: str, multiline: bool = False) -> str | None:
    """Why ``value`` breaks the rule (a phrase to follow the field's name), or None."""
    if value.isprintable():  # the common case, in C: no Cc, Cs or other non-printables
        return NOT_TEXT_MESSAGE if _REPLACEMENT in value else None
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc" and not (multiline and char in MULTILINE_ALLOWED):
            return CONTROL_MESSAGE
        if category == "Cs" or char == _REPLACEMENT:
            return NOT_TEXT_MESSAGE
    return None


def is_plain_text(value: object, multiline: bool = False) -> bool:
    return isinstance(value, str) and text_problem(value, multiline) is None


def clean_for_export(value: str) -> str:
    """``value`` without the characters the rule refuses (rows stored before it held some).

    Tab, newline and carriage return stay: CSV quotes them and a spreadsheet shows them.
    """
    if text_problem(value, multiline=True) is None:
        return value
    return "".join(
        char
        for char in value
        if char in MULTILINE_ALLOWED
        or (unicodedata.category(char) not in ("Cc", "Cs") and char != _REPLACEMENT)
    )


def parse_id(value: object) -> int | None:
    """A row id from text or JSON: ASCII digits (or a true int) from 1 to ``MAX_ID``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= MAX_ID else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        number = int(value)
        return number if 1 <= number <= MAX_ID else None
    return None


# --- query parameters -------------------------------------------------------------------------


# The sentence for each way a parameter can be wrong, in the reader's language.
SENTENCES = {
    "id": _l("The parameter “%(name)s” must be a number from 1 to %(max)s."),
    "page": _l("The parameter “%(name)s” must be a page number from 1 to %(max)s."),
    "date": _l(
        "The parameter “%(name)s” must be a date written YYYY-MM-DD, from %(min)s to %(max)s."
    ),
    "choice": _l("The parameter “%(name)s” must be one of: %(listed)s."),
    "unknown": _l("The parameter “%(name)s” is unknown."),
    "long": _l("The parameter “%(name)s” is longer than %(max)s characters."),
    CONTROL_MESSAGE: _l("The parameter “%(name)s” contains a control character; remove it."),
    NOT_TEXT_MESSAGE: _l(
        "The parameter “%(name)s” contains characters that are not valid text (not UTF-8); "
        "retype it."
    ),
}


class BadParameter(BadRequest):
    """A query or form parameter that is not of its kind: 400 with a sentence naming it
    (``problem``: a key of ``SENTENCES``, ``values`` its other placeholders)."""

    def __init__(self, name: str, problem: str, **values):
        shown = name if is_plain_text(name) and len(name) <= 40 else "?"
        super().__init__(str(SENTENCES[problem]) % {"name": shown, **values})


def _raw(name: str, values: Mapping | None) -> str:
    source = request.args if values is None else values
    value = source.get(name)
    return "" if value is None else str(value)


def id_arg(name: str, values: Mapping | None = None) -> int | None:
    """An id filter: absent or empty is None; anything but an id is refused."""
    raw = _raw(name, values).strip()
    if not raw:
        return None
    number = parse_id(raw)
    if number is None:
        raise BadParameter(name, "id", max=MAX_ID)
    return number


def page_arg(name: str = "page", values: Mapping | None = None) -> int:
    """A page number: absent is 1; anything but 1 to ``MAX_PAGE`` is refused."""
    raw = _raw(name, values).strip()
    if not raw:
        return 1
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= MAX_PAGE):
        raise BadParameter(name, "page", max=MAX_PAGE)
    return int(raw)


def date_arg(name: str, values: Mapping | None = None) -> date | None:
    """A date filter (YYYY-MM-DD) between ``MIN_DATE`` and ``MAX_DATE``; absent is None."""
    raw = _raw(name, values).strip()
    if not raw:
        return None
    bounds = {"min": MIN_DATE, "max": MAX_DATE}
    if not (raw.isascii() and len(raw) == 10):
        raise BadParameter(name, "date", **bounds)
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(name, "date", **bounds) from None
    if not MIN_DATE <= day <= MAX_DATE:
        raise BadParameter(name, "date", **bounds)
    return day


def choice_arg(
    name: str, choices: Collection[str], default: str = "", values: Mapping | None = None
) -> str:
    """One of ``choices``; absent or empty is ``default``; anything else is refused."""
    raw = _raw(name, values).strip()
    if not raw:
        return default
    if raw not in choices:
        listed = ", ".join(sorted(choices))
        if len(listed) < 200:
            raise BadParameter(name, "choice", listed=listed)
        raise BadParameter(name, "unknown")
    return raw


def text_arg(name: str, max_length: int = 100, values: Mapping | None = None) -> str:
    """Free text (a search): single-line, at most ``max_length`` characters."""
    raw = _raw(name, values)
    problem = text_problem(raw)
    if problem:
        raise BadParameter(name, problem)
    if len(raw) > max_length:
        raise BadParameter(name, "long", max=max_length)
    return raw.strip()


def check_query_string() -> None:
    """Every query parameter's name and values keep the text rule (a ``before_request`` hook).

    The typed helpers above check what a view reads; this refuses a control character in any
    parameter at all, including the ones a view passes on without reading (links that keep the
    filters, ``next``).
    """
    for name, value in request.args.items(multi=True):
        for text in (name, value):
            problem = text_problem(text)
            if problem:
                raise BadParameter(name, problem)

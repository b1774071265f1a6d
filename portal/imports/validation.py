"""Checking and normalising one imported row, ready to insert.

Messages name what is wrong and how to fix it, never the value itself: the error report is a
file that travels, and the values are personal data.

Rules worth knowing:

- Dates: ``yyyy-mm-dd`` (a time after it is ignored), ``dd/mm/yyyy``, ``dd-mm-yyyy`` or
  ``dd.mm.yyyy``, Excel date cells, and Excel serial numbers (1900 date system). Slashed dates
  are always read **day first**: 03/04/1990 is 3 April. A date that only makes sense month first
  (04/13/1990) is refused rather than read differently from its neighbours, so a file written
  month first is noticed instead of being half misread. A bare year (1985) is refused too,
  rather than read as a serial number.
- Coordinates: both latitude and longitude, or neither; they are appended to the location as
  " (lat, lon)" with up to 6 decimals (about 10 cm), because the location is the one place the
  person's whereabouts are stored (encrypted); ``latitude``/``longitude`` keep the numbers too.
- Phones: numbers Excel stored as 9841234567.0 read as 9841234567; numbers already shortened to
  scientific notation (9.84E+09) have lost digits and are refused.
- Consent is never assumed: empty means no.
- Free text (name, location) starting with = + - or @ is refused: a spreadsheet that opens the
  export later would run it as a formula.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date, datetime, time, timedelta
from typing import NamedTuple

from portal import dateranges, inputs
from portal.beneficiaries import normalize
from portal.beneficiaries.forms import LANGUAGES
from portal.imports.fields import BY_NAME, check_mapping
from portal.imports.indexes import BlindIndexer
from portal.imports.phones import PhoneNormaliser
from portal.imports.problems import code_of, english

MAX_CELL = 1000
MAX_NAME = 200
INVALID, DUPLICATE = "invalid", "duplicate"

_FORMULA_START = ("=", "+", "-", "@")
_SPREADSHEET_ERRORS = {
    "#N/A",
    "#REF!",
    "#VALUE!",
    "#DIV/0!",
    "#NAME?",
    "#NUM!",
    "#NULL!",
    "#SPILL!",
    "#CALC!",
}
_ISO = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_DAY_FIRST = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SCIENTIFIC = re.compile(r"[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+")
_WHOLE_WITH_ZEROS = re.compile(r"(\+?\d+)\.0+")
_DEGREES = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 is 1900-01-01 once Excel's 1900 leap-year bug is in
_EXCEL_LAST = 2958465  # 9999-12-31

_GENDERS = {
    "": "",
    "f": "female",
    "female": "female",
    "woman": "female",
    "m": "male",
    "male": "male",
    "man": "male",
    "o": "other",
    "other": "other",
}
_LANGUAGE_CODES = {code for code, _ in LANGUAGES}
_LANGUAGE_NAMES = {
    **{label.casefold(): code for code, label in LANGUAGES},
    # Names people write in the language itself, for the languages the portal offers.
    **{
        name: code
        for name, code in {
            "नेपाली": "ne",
            "हिन्दी": "hi",
            "हिंदी": "hi",
            "বাংলা": "bn",
            "bangla": "bn",
            "kiswahili": "sw",
        }.items()
        if code in _LANGUAGE_CODES
    },
}
DEFAULT_LANGUAGE = "en"  # what the Beneficiary model gives when no language is set
_YES = {"yes", "y", "true", "1", "given", "agreed", "consented"}
_NO = {"no", "n", "false", "0", "not given", "refused", "declined"}


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    field: str  # a field key from fields.FIELDS, or "" for the row as a whole
    message: str  # in English, for the report file; the page writes it from code and values
    column: str = ""  # the header of the file's column, when the error is about one
    kind: str = INVALID  # or DUPLICATE (see dedup)
    # The problem as the page writes it in its reader's language (a key of problems.TEXTS and
    # its values); the same problem whatever the code, as far as equality goes.
    code: str = dataclass_field(default="", compare=False)
    values: dict | None = dataclass_field(default=None, compare=False)


class ValidRow(NamedTuple):
    """A checked row. A named tuple rather than a frozen dataclass: as immutable, and built
    four times faster (a frozen dataclass sets each of its 14 fields through a call)."""

    row: int
    name: str
    phone: str  # E.164
    phone_index: str
    national_id: str | None
    national_id_index: str | None
    date_of_birth: str | None  # ISO
    location: str | None  # with " (lat, lon)" when coordinates were given
    latitude: float | None
    longitude: float | None
    gender: str  # "", female, male or other
    language: str
    consent: bool
    retention_until: date | None

    def pii_values(self) -> dict:
        """Keyword arguments for BeneficiaryPII."""
        return {
            "name": self.name,
            "phone": self.phone,
            "national_id": self.national_id,
            "date_of_birth": self.date_of_birth,
            "location": self.location,
            "phone_index": self.phone_index,
            "national_id_index": self.national_id_index,
        }

    def record_values(self) -> dict:
        """Keyword arguments for Beneficiary (consent_at is the importer's clock, if consent)."""
        return {
            "gender": self.gender,
            "language": self.language,
            "retention_until": self.retention_until,
        }


class _Bad(Exception):
    """A problem with a value: its code and values (``problems.TEXTS``), and the English."""

    def __init__(self, code: str, **values):
        self.code, self.values = code, values or None
        self.message = english(code, values)
        super().__init__(self.message)

    @classmethod
    def sentence(cls, message: str) -> _Bad:
        """A sentence without values from another module (``dateranges``), code found by it."""
        bad = cls.__new__(cls)
        Exception.__init__(bad, message)
        bad.code, bad.values, bad.message = code_of(message), None, message
        return bad


class RowValidator:
    """Validates rows of one file: ``mapping`` is header -> field key (falsy: ignored column)."""

    def __init__(
        self,
        mapping: dict[str, str],
        headers: list[str],
        default_country: str,
        today: date | None = None,
    ):
        problems = check_mapping(mapping, headers)
        if problems:
            raise ValueError("unusable mapping: " + " ".join(problems))
        self.default_country = default_country
        self.today = today or date.today()
        self._phones = PhoneNormaliser(default_country)
        self._phone_index = BlindIndexer(prefix="phone:")
        self._nid_index = BlindIndexer(prefix="nid:")
        self._width = len(headers)
        self._columns = [
            _Column(field, headers.index(header), header, getattr(self, f"_{field}"))
            for header, field in mapping.items()
            if field
        ]
        self._coordinates = any(c.field in ("latitude", "longitude") for c in self._columns)

    def validate(self, row: int, cells: list) -> ValidRow | list[RowError]:
        errors: list[RowError] = []
        width = len(cells)
        if width > self._width and any(cell != "" for cell in cells[self._width :]):
            errors.append(
                RowError(
                    row,
                    "",
                    english("extra_cells"),
                    code="extra_cells",
                )
            )
        values: dict[str, object] = {}
        for column in self._columns:
            raw = cells[column.index] if column.index < width else ""
            outcome = column.outcome(raw)
            if type(outcome) is _Failure:
                errors.append(
                    RowError(
                        row,
                        column.field,
                        outcome.message,
                        column.header,
                        code=outcome.code,
                        values=outcome.values,
                    )
                )
            else:
                values[column.field] = outcome
        if self._coordinates:
            self._check_coordinates(row, values, errors)
        if errors:
            return errors
        return self._valid(row, values)

    # -- per field ---------------------------------------------------------------------------

    def _name(self, raw: object) -> str:
        name = _free_text(raw)
        if not name:
            raise _Bad("name_required")
        if len(name) > MAX_NAME:
            raise _Bad("name_too_long", max=MAX_NAME)
        return name

    def _phone(self, raw: object) -> str:
        text = _number_text(raw, "phone_not_number")
        if not text:
            raise _Bad("phone_required")
        if text.isdigit():  # most cells: neither form below can match digits alone
            return self._phones.e164(text)
        if _SCIENTIFIC.fullmatch(text):
            raise _Bad("phone_shortened")
        if whole := _WHOLE_WITH_ZEROS.fullmatch(text):
            text = whole.group(1)
        return self._phones.e164(text)

    def _national_id(self, raw: object) -> str | None:
        return normalize.national_id(_number_text(raw, "national_id_format"))

    def _date_of_birth(self, raw: object) -> str | None:
        return normalize.date_of_birth(_date(raw), self.today)

    def _retention_until(self, raw: object) -> date | None:
        value = _date(raw)
        if value is not None and (problem := dateranges.RETENTION.problem(value, self.today)):
            raise _Bad.sentence(problem)
        return value

    def _location(self, raw: object) -> str | None:
        return _free_text(raw) or None

    def _latitude(self, raw: object) -> float | None:
        return _degrees(raw, 90)

    def _longitude(self, raw: object) -> float | None:
        return _degrees(raw, 180)

    def _gender(self, raw: object) -> str:
        key = _plain(raw).casefold().rstrip(".")
        if key not in _GENDERS:
            raise _Bad("gender_unknown")
        return _GENDERS[key]

    def _language(self, raw: object) -> str:
        text = _plain(raw)
        if not text:
            return DEFAULT_LANGUAGE
        if text.lower() in _LANGUAGE_CODES:
            return text.lower()
        found = _LANGUAGE_NAMES.get(text.casefold())
        if found is None:
            codes = ", ".join(code for code, _ in LANGUAGES)
            raise _Bad("language_unknown", codes=codes)
        return found

    def _consent(self, raw: object) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int | float):
            raw = _number_text(raw, "yes_or_no")
        text = " ".join(_plain(raw).casefold().split())
        if not text:
            return False
        if text in _YES:
            return True
        if text in _NO:
            return False
        raise _Bad("yes_or_no")

    # -- the row as a whole ------------------------------------------------------------------

    def _check_coordinates(self, row: int, values: dict, errors: list[RowError]) -> None:
        if "latitude" not in values and "longitude" not in values:
            return
        lat, lon = values.get("latitude"), values.get("longitude")
        failed = any(e.field in ("latitude", "longitude") for e in errors)
        if failed or (lat is None and lon is None):
            return
        if lat is None or lon is None:
            missing = "latitude" if lat is None else "longitude"
            errors.append(
                RowError(
                    row,
                    missing,
                    english("coordinates_both"),
                    self._header_of(missing),
                    code="coordinates_both",
                )
            )
        elif lat == 0 and lon == 0:
            errors.append(
                RowError(
                    row,
                    "latitude",
                    english("coordinates_zero"),
                    self._header_of("latitude"),
                    code="coordinates_zero",
                )
            )

    def _header_of(self, field: str) -> str:
        return next((c.header for c in self._columns if c.field == field), "")

    def _valid(self, row: int, values: dict) -> ValidRow:
        phone = values["phone"]
        nid = values.get("national_id")
        lat, lon = values.get("latitude"), values.get("longitude")
        location = values.get("location")
        if lat is not None and lon is not None:
            location = " ".join(filter(None, [location, f"({_fmt(lat)}, {_fmt(lon)})"]))
        return ValidRow(
            row=row,
            name=values["name"],
            phone=phone,
            phone_index=self._phone_index(phone),
            national_id=nid,
            national_id_index=self._nid_index(nid) if nid else None,
            date_of_birth=values.get("date_of_birth"),
            location=location,
            latitude=lat,
            longitude=lon,
            gender=values.get("gender", ""),
            language=values.get("language", DEFAULT_LANGUAGE),
            consent=values.get("consent", False),
            retention_until=values.get("retention_until"),
        )


class _Failure:
    """A field's problem (code, values, English), as kept in a column's cache."""

    __slots__ = ("code", "message", "values")

    def __init__(self, code: str, message: str, values: dict | None = None):
        self.code, self.message, self.values = code, message, values


# The fields whose values repeat across rows (names, places, dates, codes). Phones and national
# IDs are unique per person: caching them would only cost memory.
_CACHED = frozenset(
    ("name", "location", "date_of_birth", "retention_until", "gender", "language", "consent")
)
# Distinct values per field; the cache starts over when full, so memory stays flat. Dates of
# birth need the most: a century of days, in two or three ways of writing them.
CACHE_SIZE = 50_000
CACHED_LENGTH = 100  # longer values are rare and would make the cache heavy
_MISSING = object()


class _Column:
    """One mapped column: its parser, and for repeating fields a cache of text -> outcome.

    Only ``str`` cells are cached: the outcome depends on the type too (1 == 1.0 == True as dict
    keys), and a parser's outcome depends on nothing but the value (the validator's country and
    date are fixed for its life), so a cached answer is the answer, errors included.
    """

    __slots__ = ("_cache", "_parse", "field", "header", "index")

    def __init__(self, field: str, index: int, header: str, parse: Callable[[object], object]):
        self.field, self.index, self.header, self._parse = field, index, header, parse
        self._cache: dict[str, object] | None = {} if field in _CACHED else None

    def outcome(self, raw: object) -> object:
        """The parsed value, or a ``_Failure`` with the message for the user."""
        cache = self._cache
        if cache is not None and type(raw) is str and len(raw) <= CACHED_LENGTH:
            found = cache.get(raw, _MISSING)
            if found is _MISSING:
                if len(cache) >= CACHE_SIZE:
                    cache.clear()
                found = cache[raw] = self._checked(raw)
            return found
        return self._checked(raw)

    def _checked(self, raw: object) -> object:
        try:
            if isinstance(raw, str):
                if len(raw) > MAX_CELL:
                    raise _Bad("cell_too_long", max=MAX_CELL)
                if raw in _SPREADSHEET_ERRORS:
                    raise _Bad("spreadsheet_error", error=raw)
            return self._parse(raw)
        except _Bad as bad:
            return _Failure(bad.code, bad.message, bad.values)
        except normalize.InvalidValue as bad:
            message = str(bad)
            return _Failure(bad.code or code_of(message), message, bad.values)


# Value helpers ------------------------------------------------------------------------------


def _plain(raw: object) -> str:
    if raw is None:
        return ""
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw).strip()


def _free_text(raw: object) -> str:
    text = " ".join(_plain(raw).split())
    if inputs.text_problem(text):  # the portal's input rule: no C0/C1 controls, valid text
        raise _Bad("control_characters")
    if text.startswith(_FORMULA_START):
        raise _Bad("formula_start", first=text[0])
    return text


def _number_text(raw: object, code: str) -> str:
    """Digits as text from a cell that may hold a number (Excel stores 9841234567 as a float);
    ``code`` names the problem when it holds something else."""
    if isinstance(raw, bool | datetime | date | time | timedelta):
        raise _Bad(code)
    if isinstance(raw, float):
        if not raw.is_integer():
            raise _Bad(code)
        return str(int(raw))
    return _plain(raw)


def _date(raw: object) -> date | None:
    if isinstance(raw, bool | time):
        raise _Bad("not_a_date")
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, int | float):
        return _serial(raw)
    text = _plain(raw)
    if not text:
        return None
    if found := _ISO.fullmatch(text):
        year, month, day = (int(part) for part in found.groups())
        return _calendar(year, month, day)
    if found := _DAY_FIRST.fullmatch(text):
        day, month, year_text = found.groups()
        if len(year_text) == 2:
            raise _Bad("four_digit_year")
        day_n, month_n = int(day), int(month)
        if month_n > 12 and day_n <= 12:
            raise _Bad("month_first")
        return _calendar(int(year_text), month_n, day_n)
    if _NUMBER.fullmatch(text):
        return _serial(float(text))
    raise _Bad("date_format")


def _calendar(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise _Bad("not_a_real_date") from None


def _serial(number: float) -> date:
    if 1900 <= number <= 2100 and float(number).is_integer():
        raise _Bad("only_a_year")
    if not (math.isfinite(number) and 1 <= number <= _EXCEL_LAST):
        raise _Bad("not_a_date")
    return _EXCEL_EPOCH + timedelta(days=int(number))


def _degrees(raw: object, limit: int) -> float | None:
    if isinstance(raw, bool | datetime | date | time | timedelta):
        raise _Bad("degrees_format")
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        text = _plain(raw).replace(" ", "")
        if not text:
            return None
        if text.count(",") == 1 and "." not in text:  # a decimal comma
            text = text.replace(",", ".")
        if not _DEGREES.fullmatch(text):
            raise _Bad("degrees_format")
        value = float(text)
    if not (math.isfinite(value) and -limit <= value <= limit):
        raise _Bad("degrees_range", limit=limit)
    return value


def _fmt(degrees: float) -> str:
    text = f"{degrees:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def field_label(field: str) -> str:
    """The label to show for an error's field ("" for a row-wide error)."""
    return BY_NAME[field].label if field in BY_NAME else ""

"""The beneficiary fields a file can fill, and matching a file's headers to them.

A header matches a field when, ignoring case, spaces and punctuation, it equals the field's key,
its label or one of its synonyms: "Mobile No.", "mobile_no" and "MOBILE NO" all mean the phone.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from flask_babel import gettext as _

from portal.imports.problems import field_label


@dataclass(frozen=True)
class Field:
    name: str  # the key used in mappings, e.g. "date_of_birth"
    label: str
    help: str
    required: bool = False
    synonyms: tuple[str, ...] = ()


FIELDS: tuple[Field, ...] = (
    Field(
        "name",
        "Full name",
        "The person's full name, at most 200 characters.",
        required=True,
        synonyms=(
            "name",
            "full name",
            "fullname",
            "names",
            "beneficiary",
            "beneficiary name",
            "name of beneficiary",
            "person name",
            "participant name",
            "recipient name",
            "head of household",
            "household head",
            "hh head name",
            "naam",
        ),
    ),
    Field(
        "phone",
        "Phone number",
        "A mobile number. Local numbers use the default country; otherwise start with + and "
        "the country code. Format the column as Text in Excel so it is not shortened.",
        required=True,
        synonyms=(
            "phone",
            "phone number",
            "phone no",
            "phone num",
            "mobile",
            "mobile number",
            "mobile no",
            "mobile phone",
            "cell",
            "cell phone",
            "cellphone",
            "contact",
            "contact number",
            "contact no",
            "telephone",
            "tel",
            "msisdn",
            "whatsapp",
        ),
    ),
    Field(
        "national_id",
        "National ID",
        "The national ID or citizenship number: 4 to 32 letters and digits (spaces, dashes, "
        "dots and slashes are ignored).",
        synonyms=(
            "national id",
            "national id number",
            "national id no",
            "nid",
            "nid number",
            "nid no",
            "id number",
            "id no",
            "identity number",
            "national identity number",
            "citizenship",
            "citizenship no",
            "citizenship number",
            "citizenship id",
            "nin",
            "document number",
        ),
    ),
    Field(
        "date_of_birth",
        "Date of birth",
        "yyyy-mm-dd, or dd/mm/yyyy with the day first. Excel date cells work as they are.",
        synonyms=("dob", "date of birth", "birth date", "birthdate", "birthday", "born"),
    ),
    Field(
        "location",
        "Location",
        "Village, ward or address, as free text.",
        synonyms=(
            "location",
            "address",
            "village",
            "ward",
            "tole",
            "settlement",
            "community",
            "municipality",
            "place",
        ),
    ),
    Field(
        "latitude",
        "Latitude",
        "Decimal degrees between -90 and 90, like 27.7172. Give both latitude and longitude, "
        "or neither.",
        synonyms=("latitude", "lat", "gps latitude", "gps lat", "location latitude"),
    ),
    Field(
        "longitude",
        "Longitude",
        "Decimal degrees between -180 and 180, like 85.324.",
        synonyms=(
            "longitude",
            "lon",
            "lng",
            "long",
            "gps longitude",
            "gps lon",
            "gps lng",
            "location longitude",
        ),
    ),
    Field(
        "gender",
        "Gender",
        "female, male or other (or F, M, O); empty if not given.",
        synonyms=("gender", "sex"),
    ),
    Field(
        "language",
        "Language",
        "The language for messages: a code (en, ne, hi, bn, sw) or its name (Nepali). "
        "English if empty.",
        synonyms=("language", "sms language", "preferred language", "lang", "message language"),
    ),
    Field(
        "consent",
        "Consent",
        "yes or no: did the person consent to the use of their data? Empty counts as no.",
        synonyms=("consent", "consent given", "consented", "data consent", "consent to data use"),
    ),
    Field(
        "retention_until",
        "Keep data until",
        "A date in the future (yyyy-mm-dd or dd/mm/yyyy) after which the data is deleted.",
        synonyms=(
            "keep data until",
            "retention until",
            "retention",
            "retention date",
            "retain until",
            "keep until",
            "delete after",
        ),
    ),
)
BY_NAME: dict[str, Field] = {field.name: field for field in FIELDS}
REQUIRED: tuple[str, ...] = tuple(field.name for field in FIELDS if field.required)


def header_key(text: str) -> str:
    """Case-, space- and punctuation-free form of a header, for comparing."""
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    # Letters and digits of any script survive, so a header in Devanagari can still match.
    return "".join(ch for ch in folded if ch.isalnum())


def _lookup() -> dict[str, str]:
    table: dict[str, str] = {}
    for field in FIELDS:
        for text in (field.name, field.label, *field.synonyms):
            found = table.setdefault(header_key(text), field.name)
            if found != field.name:
                raise RuntimeError(f"synonym {text!r} is given to both {found} and {field.name}")
    return table


_BY_HEADER_KEY = _lookup()
# Kobo exports a geopoint question "gps" as "_gps_latitude" / "_gps_longitude": match on the end.
_SUFFIXES = (("latitude", "latitude"), ("longitude", "longitude"))


def guess_field(header: str) -> str | None:
    key = header_key(header)
    if not key:
        return None
    found = _BY_HEADER_KEY.get(key)
    if found is None:
        found = next((field for end, field in _SUFFIXES if key.endswith(end)), None)
    return found


def guess_mapping(headers: Iterable[str]) -> dict[str, str]:
    """Header -> field for the headers recognised; each field goes to the first header naming it.

    Headers not recognised are left out: their columns are ignored unless the user maps them.
    """
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        field = guess_field(header)
        if field is not None and field not in taken and header not in mapping:
            mapping[header] = field
            taken.add(field)
    return mapping


def check_mapping(mapping: dict[str, str], headers: Sequence[str]) -> list[str]:
    """What is wrong with a mapping, as messages for the user (in the page's language; English
    in a worker); empty when it can be used.

    A header mapped to an empty value is a column the user chose to ignore.
    """
    problems: list[str] = []
    present = set(headers)
    columns_of: dict[str, list[str]] = {}
    for header, field in mapping.items():
        if not field:
            continue
        if header not in present:
            problems.append(_("The column “%(header)s” is not in the file.", header=header))
        if field not in BY_NAME:
            problems.append(
                _(
                    "The column “%(header)s” is mapped to an unknown field “%(field)s”.",
                    header=header,
                    field=field,
                )
            )
            continue
        columns_of.setdefault(field, []).append(header)
    for field, columns in columns_of.items():
        if len(columns) > 1:
            named = ", ".join(f"“{c}”" for c in columns)
            problems.append(
                _(
                    "%(field)s is mapped from more than one column (%(columns)s); choose one.",
                    field=field_label(field),
                    columns=named,
                )
            )
    for key in REQUIRED:
        if key not in columns_of:
            problems.append(
                _("%(field)s is required: choose the column that holds it.", field=field_label(key))
            )
    if ("latitude" in columns_of) != ("longitude" in columns_of):
        problems.append(
            _("Latitude and longitude go together: choose columns for both, or neither.")
        )
    return problems

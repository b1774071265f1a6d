"""What is wrong with an imported row, as a code and values, written in the reader's language.

The check runs in a worker, which has no reader and so no language: each problem is kept as a
code and its values (in the batch's error preview, a JSON column) beside the English sentence,
which the downloadable report and the logs use. The page writes the sentence again from the
code, in the language of whoever opens it. Entries kept before there were codes, or with a code
this version does not know, have only their English sentence: the page shows it as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from flask_babel import gettext

from portal.i18n.formatting import number


def N_(text: str) -> str:  # the gettext convention: marks a string, translated later
    return text


# The sentences, by code. The English is what the report file says; placeholders are values.
TEXTS: dict[str, str] = {
    "extra_cells": N_(
        "This row has values in columns that have no header. In a CSV file this usually means "
        "a value containing the delimiter is missing its quotes."
    ),
    "name_required": N_("A name is required."),
    "name_too_long": N_("A name can have at most %(max)s characters."),
    "phone_not_number": N_("Not a phone number."),
    "phone_required": N_("A phone number is required."),
    "phone_shortened": N_(
        "The number was shortened by a spreadsheet into scientific notation (like 9.84E+09) "
        "and has lost digits. Format the column as Text and enter it again."
    ),
    "phone_invalid": N_("Not a valid phone number for %(country)s."),
    "national_id_format": N_("Use 4 to 32 letters and digits."),
    "gender_unknown": N_("Use female, male or other (or F, M, O), or leave it empty."),
    "language_unknown": N_("Use one of %(codes)s, or the language's name in English."),
    "yes_or_no": N_("Use yes or no."),
    "coordinates_both": N_("Give both latitude and longitude, or neither."),
    "coordinates_zero": N_(
        "0, 0 is not a real place (a GPS without a fix gives it); leave both empty."
    ),
    "cell_too_long": N_("The value is longer than %(max)s characters."),
    "spreadsheet_error": N_(
        "The cell holds the spreadsheet error %(error)s: fix it or type the value."
    ),
    "control_characters": N_("Contains invisible control characters; type the value again."),
    "formula_start": N_(
        "Starts with “%(first)s”, which spreadsheets run as a formula. Remove that first character."
    ),
    "not_a_date": N_("Not a date."),
    "four_digit_year": N_("Use a four-digit year, like 31/01/1990."),
    "month_first": N_(
        "This date reads as month first; write dates day first (dd/mm/yyyy) or as yyyy-mm-dd."
    ),
    "not_a_real_date": N_("Not a real date (dates are read day first: dd/mm/yyyy)."),
    "only_a_year": N_("Only a year is given; write the full date, like 1990-01-31."),
    "date_format": N_("Use a date like 1990-01-31 or 31/01/1990 (day first)."),
    "degrees_format": N_("Use decimal degrees, like 27.7172."),
    "degrees_range": N_("Must be between -%(limit)s and %(limit)s."),
    # The date ranges' sentences (portal.dateranges), found by their English text.
    "birth_too_early": N_("A date of birth cannot be before 1900."),
    "birth_too_late": N_("A date of birth cannot be in the future."),
    "retention_too_early": N_("The date to keep the data until must be in the future."),
    "retention_too_late": N_("Keep the data at the latest until 2100-12-31."),
    # Duplicates: within the file, and with people already enrolled.
    "same_phone_as_row": N_("Same phone number as row %(row)s."),
    "same_national_id_as_row": N_("Same national ID as row %(row)s."),
    "phone_enrolled": N_("A beneficiary with this phone number is already enrolled."),
    "national_id_enrolled": N_("A beneficiary with this national ID is already enrolled."),
    "already_enrolled_phone": N_("Already enrolled: a beneficiary has this phone number."),
    "already_enrolled_national_id": N_("Already enrolled: a beneficiary has this national ID."),
}
# The fields as the page names them (``fields.FIELDS`` keeps the English labels, which are also
# what a file's headers are matched against).
FIELD_LABELS: dict[str, str] = {
    "name": N_("Full name"),
    "phone": N_("Phone number"),
    "national_id": N_("National ID"),
    "date_of_birth": N_("Date of birth"),
    "location": N_("Location"),
    "latitude": N_("Latitude"),
    "longitude": N_("Longitude"),
    "gender": N_("Gender"),
    "language": N_("Language"),
    "consent": N_("Consent"),
    "retention_until": N_("Keep data until"),
}
# The values each sentence needs.
_NAMES = {code: frozenset(re.findall(r"%\((\w+)\)s", text)) for code, text in TEXTS.items()}
# A sentence without values that another module raises (normalize, dateranges) -> its code.
_PLAIN = {text: code for code, text in TEXTS.items() if "%(" not in text}


def english(code: str, values: Mapping[str, object] | None = None) -> str:
    """The English sentence, for the report file and the logs."""
    text = TEXTS[code]
    if not values:
        return text
    return text % {k: f"{v:,}" if _is_count(v) else v for k, v in values.items()}


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def code_of(sentence: str) -> str:
    """The code of an English sentence without values, or "" when it has none."""
    return _PLAIN.get(sentence, "")


def sentence(entry: Mapping) -> str:
    """An entry of the error preview (``row``, ``field``, ``message``, maybe ``code`` and
    ``values``) as a sentence in the page's language."""
    code = entry.get("code") or ""
    if not isinstance(code, str) or code not in TEXTS:
        return entry.get("message", "")
    kept = entry.get("values") or {}
    if not isinstance(kept, Mapping) or not _NAMES[code] <= kept.keys():
        return entry.get("message", "")
    values = {name: number(value) if _is_count(value) else value for name, value in kept.items()}
    try:
        return gettext(TEXTS[code], **values)
    except (KeyError, ValueError, TypeError):  # values that do not fit the sentence any more
        return entry.get("message", "")


def field_label(field: str) -> str:
    """A field's name in the page's language ("" for a problem with the whole row)."""
    return gettext(FIELD_LABELS[field]) if field in FIELD_LABELS else field


def translated(error: Exception) -> str:
    """A refusal from ``normalize`` or ``dateranges`` (English, maybe with a code) in the page's
    language: by its code, else by its English sentence when the catalogs hold it."""
    code = getattr(error, "code", "") or ""
    if isinstance(code, str) and code in TEXTS:
        return gettext(TEXTS[code], **(getattr(error, "values", None) or {}))
    return gettext(str(error))

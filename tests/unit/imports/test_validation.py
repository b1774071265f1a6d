from __future__ import annotations

from datetime import date, datetime, time

import pytest

from portal.crypto import blind_index
from portal.imports.fields import FIELDS
from portal.imports.validation import RowError, RowValidator, ValidRow

TODAY = date(2026, 11, 21)
HEADERS = [f.label for f in FIELDS]
MAPPING = {f.label: f.name for f in FIELDS}


@pytest.fixture
def check(index_key):
    validator = RowValidator(MAPPING, HEADERS, "NP", today=TODAY)

    def check(**values) -> ValidRow | list[RowError]:
        cells = {"name": "Sita Kumari", "phone": "9841000001", **values}
        return validator.validate(7, [cells.get(f.name, "") for f in FIELDS])

    return check


def errors(result) -> dict[str, str]:
    assert isinstance(result, list), result
    return {e.field: e.message for e in result}


def test_a_full_row_is_normalised_and_indexed_like_the_form_does(check):
    result = check(
        name="  Sita   Kumari ",
        phone="984-100-0001",
        national_id="12-34 567/8",
        date_of_birth="31/01/1990",
        location=" Ward 4 ",
        latitude="27.71720",
        longitude="85.3240",
        gender="F",
        language="Nepali",
        consent="Yes",
        retention_until="2030-12-31",
    )
    assert result == ValidRow(
        row=7,
        name="Sita Kumari",
        phone="+9779841000001",
        phone_index=blind_index("phone:+9779841000001"),
        national_id="12345678",
        national_id_index=blind_index("nid:12345678"),
        date_of_birth="1990-01-31",
        location="Ward 4 (27.7172, 85.324)",
        latitude=27.7172,
        longitude=85.324,
        gender="female",
        language="ne",
        consent=True,
        retention_until=date(2030, 12, 31),
    )
    assert result.pii_values()["phone_index"] == result.phone_index
    assert result.record_values() == {
        "gender": "female",
        "language": "ne",
        "retention_until": date(2030, 12, 31),
    }


def test_only_the_required_fields(check):
    result = check()
    assert isinstance(result, ValidRow)
    assert (result.national_id, result.national_id_index, result.location) == (None, None, None)
    assert (result.gender, result.language, result.consent) == ("", "en", False)


def test_every_problem_of_a_row_is_reported_with_its_column(check):
    result = check(name="", phone="", gender="maybe")
    assert result == [
        RowError(7, "name", "A name is required.", "Full name"),
        RowError(7, "phone", "A phone number is required.", "Phone number"),
        RowError(
            7, "gender", "Use female, male or other (or F, M, O), or leave it empty.", "Gender"
        ),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("9841000001", "+9779841000001"),
        ("+977 984 100 0001", "+9779841000001"),
        ("009779841000001", "+9779841000001"),
        ("9779841000001", "+9779841000001"),
        (9841000001, "+9779841000001"),
        (9841000001.0, "+9779841000001"),
        ("9841000001.0", "+9779841000001"),
    ],
)
def test_phone_forms(check, raw, expected):
    assert check(phone=raw).phone == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("12345", "Not a valid phone number for NP."),
        ("call me", "Not a phone number."),
        ("9.84E+09", "scientific notation"),
        (9841000001.5, "Not a phone number."),
        (True, "Not a phone number."),
        (datetime(2020, 1, 1), "Not a phone number."),
    ],
)
def test_bad_phones_say_why_without_the_number(check, raw, message):
    found = errors(check(phone=raw))["phone"]
    assert message in found and "984" not in found.replace("9.84E+09", "")


def test_the_default_country_is_the_one_given(index_key):
    validator = RowValidator({"N": "name", "P": "phone"}, ["N", "P"], "KE")
    assert validator.validate(2, ["Amina", "0712345678"]).phone == "+254712345678"
    assert errors(validator.validate(3, ["Amina", "9841000001"])) == {
        "phone": "Not a valid phone number for KE."
    }


def test_names(check):
    assert errors(check(name="x" * 201)) == {"name": "A name can have at most 200 characters."}
    assert errors(check(name="Ram\x00")) == {
        "name": "Contains invisible control characters; type the value again."
    }
    assert check(name="Ram\tBahadur\nThapa").name == "Ram Bahadur Thapa"
    assert check(name=12345).name == "12345"


@pytest.mark.parametrize("first", ["=", "+", "-", "@"])
def test_formula_like_free_text_is_refused(check, first):
    assert errors(check(name=f" {first}1+1")) == {
        "name": f"Starts with “{first}”, which spreadsheets run as a formula. Remove that first "
        "character."
    }
    assert set(errors(check(location=f"{first}cmd"))) == {"location"}


def test_the_cell_cap_names_the_field(check):
    assert errors(check(location="x" * 1001)) == {
        "location": "The value is longer than 1,000 characters."
    }
    assert check(location="x" * 1000).location == "x" * 1000


def test_spreadsheet_error_values_are_named(check):
    assert errors(check(phone="#REF!")) == {
        "phone": "The cell holds the spreadsheet error #REF!: fix it or type the value."
    }


def test_national_ids(check):
    assert check(national_id=123456789.0).national_id == "123456789"
    assert errors(check(national_id="ab")) == {"national_id": "Use 4 to 32 letters and digits."}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1990-01-31", "1990-01-31"),
        ("1990/1/31", "1990-01-31"),
        ("1990-01-31 00:00:00", "1990-01-31"),
        ("31/01/1990", "1990-01-31"),
        ("31-01-1990", "1990-01-31"),
        ("31.01.1990", "1990-01-31"),
        ("03/04/1990", "1990-04-03"),  # day first, always
        (datetime(1990, 1, 31, 12), "1990-01-31"),
        (date(1990, 1, 31), "1990-01-31"),
        (32874, "1990-01-01"),  # Excel serial numbers
        (32874.75, "1990-01-01"),
        ("32874", "1990-01-01"),
        ("", None),
    ],
)
def test_dates_of_birth(check, raw, expected):
    assert check(date_of_birth=raw).date_of_birth == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("04/13/1990", "This date reads as month first"),
        ("31/02/1990", "Not a real date (dates are read day first: dd/mm/yyyy)."),
        ("31/01/90", "Use a four-digit year, like 31/01/1990."),
        ("1985", "Only a year is given"),
        (1985, "Only a year is given"),
        ("Jan 31 1990", "Use a date like 1990-01-31 or 31/01/1990 (day first)."),
        (time(10, 30), "Not a date."),
        (-5, "Not a date."),
        ("2099-01-01", "A date of birth cannot be in the future."),
        ("1850-01-01", "A date of birth cannot be before 1900."),
    ],
)
def test_bad_dates_of_birth(check, raw, message):
    assert message in errors(check(date_of_birth=raw))["date_of_birth"]


def test_retention_must_be_in_the_future(check):
    assert check(retention_until="22/11/2026").retention_until == date(2026, 11, 22)
    assert errors(check(retention_until="21/11/2026")) == {
        "retention_until": "The date to keep the data until must be in the future."
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("female", "female"),
        ("M", "male"),
        ("man", "male"),
        ("O", "other"),
        ("", ""),
        ("f.", "female"),
    ],
)
def test_genders(check, raw, expected):
    assert check(gender=raw).gender == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("ne", "ne"), ("EN", "en"), ("Nepali", "ne"), ("HINDI", "hi"), ("नेपाली", "ne"), ("", "en")],
)
def test_languages(check, raw, expected):
    assert check(language=raw).language == expected


def test_an_unknown_language_lists_the_codes(check):
    assert errors(check(language="Klingon")) == {
        "language": "Use one of en, ne, hi, bn, sw, or the language's name in English."
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *[("yes", True), ("Y", True), (True, True), (1, True), (1.0, True), ("given", True)],
        *[
            ("no", False),
            ("N", False),
            (False, False),
            (0, False),
            ("", False),
            ("Not  given", False),
        ],
    ],
)
def test_consent(check, raw, expected):
    assert check(consent=raw).consent is expected


def test_unclear_consent_is_an_error(check):
    assert errors(check(consent="maybe")) == {"consent": "Use yes or no."}


@pytest.mark.parametrize(
    ("lat", "lon", "location"),
    [
        ("27.7172", "85.324", "(27.7172, 85.324)"),
        (-33.8688, 151.2093, "(-33.8688, 151.2093)"),
        ("27,7", "85,3", "(27.7, 85.3)"),
        ("90", "-180", "(90, -180)"),
        ("27.123456789", "85", "(27.123457, 85)"),
        ("", "", None),
    ],
)
def test_coordinates_go_into_the_location(check, lat, lon, location):
    assert check(latitude=lat, longitude=lon).location == location


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        ("91", "85", {"latitude": "Must be between -90 and 90."}),
        ("27", "181", {"longitude": "Must be between -180 and 180."}),
        ("27°42'N", "85", {"latitude": "Use decimal degrees, like 27.7172."}),
        ("nan", "85", {"latitude": "Use decimal degrees, like 27.7172."}),
        ("27.7", "", {"longitude": "Give both latitude and longitude, or neither."}),
        ("", "85.3", {"latitude": "Give both latitude and longitude, or neither."}),
        (
            "0",
            "0",
            {
                "latitude": "0, 0 is not a real place (a GPS without a fix gives it); leave "
                "both empty."
            },
        ),
    ],
)
def test_bad_coordinates(check, lat, lon, expected):
    assert errors(check(latitude=lat, longitude=lon)) == expected


def test_values_in_columns_without_a_header_are_an_error(index_key):
    validator = RowValidator({"N": "name", "P": "phone"}, ["N", "P"], "NP")
    assert isinstance(validator.validate(2, ["Ram", "9841000001", "", ""]), ValidRow)
    (problem,) = validator.validate(3, ["Thapa", " Ram", "9841000001"])[:1]
    assert problem.field == "" and "columns that have no header" in problem.message


def test_short_rows_read_missing_cells_as_empty(index_key):
    validator = RowValidator({"N": "name", "P": "phone", "L": "location"}, ["N", "P", "L"], "NP")
    assert validator.validate(2, ["Ram", "9841000001"]).location is None


def test_an_unusable_mapping_is_a_programming_error():
    with pytest.raises(ValueError, match="Phone number is required"):
        RowValidator({"N": "name"}, ["N"], "NP")


def test_repeated_values_give_the_same_answers_from_the_cache(index_key, monkeypatch):
    from portal.imports import validation

    monkeypatch.setattr(validation, "CACHE_SIZE", 3)  # the cache also starts over when full
    cached = RowValidator(MAPPING, HEADERS, "NP", today=TODAY)
    samples = [
        {"date_of_birth": "31/01/1990", "gender": "F", "consent": "yes"},
        {"date_of_birth": "04/13/1990", "gender": "maybe", "consent": "perhaps"},
        {"date_of_birth": "1990-01-31", "location": "=cmd", "language": "Nepali"},
        {"consent": 1, "gender": "1"},  # a number and the text "1" are not the same cell
        {"consent": "1", "name": "Ram"},
        {"consent": True, "language": "xx"},
    ]
    for number, values in enumerate(samples * 4, start=2):
        cells = {"name": "Sita Kumari", "phone": "9841000001", **values}
        cells = [cells.get(f.name, "") for f in FIELDS]
        fresh = RowValidator(MAPPING, HEADERS, "NP", today=TODAY)  # never a cached answer
        assert cached.validate(number, cells) == fresh.validate(number, cells)

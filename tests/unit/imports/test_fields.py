from __future__ import annotations

import pytest

from portal.imports import fields
from portal.imports.fields import FIELDS, check_mapping, guess_mapping


def test_the_catalogue_has_every_importable_field_with_help():
    assert [f.name for f in FIELDS] == [
        "name",
        "phone",
        "national_id",
        "date_of_birth",
        "location",
        "latitude",
        "longitude",
        "gender",
        "language",
        "consent",
        "retention_until",
    ]
    assert fields.REQUIRED == ("name", "phone")
    assert all(f.label and f.help.endswith(".") for f in FIELDS)


def test_every_label_and_synonym_leads_back_to_its_field():
    for field in FIELDS:
        for text in (field.name, field.label, *field.synonyms):
            assert fields.guess_field(text) == field.name, text


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Full Name", "name"),
        ("  FULL_NAME ", "name"),
        ("Beneficiary name", "name"),
        ("Mobile No.", "phone"),
        ("mobile-number", "phone"),
        ("Phone Number", "phone"),
        ("Contact", "phone"),
        ("NID", "national_id"),
        ("Citizenship No.", "national_id"),
        ("D.O.B", "date_of_birth"),
        ("Birth date", "date_of_birth"),
        ("Village", "location"),
        ("Ward", "location"),
        ("Lat", "latitude"),
        ("lng", "longitude"),
        ("Lon", "longitude"),
        ("_gps_latitude", "latitude"),
        ("_household_location_longitude", "longitude"),
        ("Sex", "gender"),
        ("SMS language", "language"),
        ("Consent given?", "consent"),
        ("Keep data until", "retention_until"),
    ],
)
def test_headers_are_matched_ignoring_case_spaces_and_punctuation(header, field):
    assert guess_mapping([header]) == {header: field}


def test_unknown_headers_are_left_out_and_a_field_goes_to_its_first_header():
    headers = ["Mobile", "Household size", "Phone", "Name", ""]
    assert guess_mapping(headers) == {"Mobile": "phone", "Name": "name"}


def test_a_good_mapping_has_no_problems():
    headers = ["Name", "Mobile", "Notes"]
    assert check_mapping({"Name": "name", "Mobile": "phone", "Notes": ""}, headers) == []


def test_required_fields_must_be_mapped():
    assert check_mapping({"Name": "name"}, ["Name", "Mobile"]) == [
        "Phone number is required: choose the column that holds it."
    ]


def test_a_field_mapped_twice_names_both_columns():
    problems = check_mapping(
        {"Name": "name", "Mobile": "phone", "Phone 2": "phone"}, ["Name", "Mobile", "Phone 2"]
    )
    assert problems == [
        "Phone number is mapped from more than one column (“Mobile”, “Phone 2”); choose one."
    ]


def test_unknown_fields_and_headers_not_in_the_file_are_named():
    problems = check_mapping(
        {"Name": "name", "Mobile": "phone", "Tribe": "ethnicity", "Gone": "location"},
        ["Name", "Mobile", "Tribe"],
    )
    assert problems == [
        "The column “Tribe” is mapped to an unknown field “ethnicity”.",
        "The column “Gone” is not in the file.",
    ]


def test_latitude_and_longitude_go_together():
    problems = check_mapping({"N": "name", "P": "phone", "Lat": "latitude"}, ["N", "P", "Lat"])
    assert problems == ["Latitude and longitude go together: choose columns for both, or neither."]

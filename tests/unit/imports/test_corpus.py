"""The bad-input corpus: every file gets a clear answer (the file refused, or row errors), and
nothing raises anything but ``FileRejected``."""

from __future__ import annotations

import random
from datetime import datetime

import pytest

from portal.imports.validation import DUPLICATE
from tests.fixtures.imports import make_corpus

REJECTED = {
    "empty.csv": "The file is empty.",
    "blank_lines.csv": "The file is empty: it has no rows with any value.",
    "missing_header.csv": "Column B has no header in the header row (row 1).",
    "duplicated_headers.csv": "Columns B and C have the same header “Phone number”.",
    "garbage.csv": "This file is not text: it contains binary data.",
    "garbage_without_zeros.csv": "This file is not text: it contains binary data.",
    "image.csv": "This file is a PNG image, not a CSV file.",
    "image.xlsx": "This file is a PNG image, not an Excel workbook.",
    "huge_cell.csv": "Row 2 holds a value longer than 1,000,000 characters",
    "unclosed_quote.csv": "Row 2 holds a value longer than 1,000,000 characters",
    "old_format.xlsx": "This is an old-format Excel (.xls) file or a password-protected workbook.",
    "text_named.xlsx": "If it is a CSV file, upload it with the .csv extension.",
    "workbook_named.csv": "If it is an .xlsx workbook, upload it with the .xlsx extension.",
    "truncated.xlsx": "This .xlsx file is damaged",
    "entity_bomb.xlsx": "The sheet cannot be read; the file may be damaged.",
}


def test_the_committed_files_are_what_the_script_makes():
    for name, make in make_corpus.COMMITTED.items():
        assert (make_corpus.HERE / name).read_bytes() == make(), f"run make_corpus.py ({name})"


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_files_that_cannot_be_imported_are_refused_with_a_reason(corpus, run_import, name):
    outcome = run_import(corpus[name])
    assert outcome.rejected is not None, name
    assert REJECTED[name] in outcome.rejected
    assert outcome.rejected.endswith(".")
    assert "Traceback" not in outcome.rejected and "Error" not in outcome.rejected


def test_every_file_gets_an_answer_and_row_errors_never_echo_values(corpus, run_import):
    for name, path in corpus.items():
        outcome = run_import(path)
        answered = outcome.rejected or outcome.mapping_problems or outcome.valid
        assert answered or outcome.errors or not outcome.table.has_rows, name
        for error in outcome.errors:
            assert error.message and error.message.endswith("."), (name, error)
            assert "98410" not in error.message and "Person" not in error.message, (name, error)


def test_only_headers_gives_no_rows_and_says_so(corpus, run_import):
    outcome = run_import(corpus["only_headers.csv"])
    assert outcome.rejected is None and outcome.mapping_problems == []
    assert outcome.table.has_rows is False
    assert outcome.valid == [] and outcome.errors == []


@pytest.mark.parametrize(
    ("name", "encoding", "delimiter"),
    [
        ("utf8.csv", "UTF-8", ","),
        ("utf8_bom.csv", "UTF-8 (with BOM)", ","),
        ("utf16.csv", "UTF-16", "\t"),
        ("utf16_be.csv", "UTF-16", ","),
        ("latin1.csv", "Windows-1252 / Latin-1", ";"),
    ],
)
def test_encodings_are_read_as_the_person_typed_them(corpus, run_import, name, encoding, delimiter):
    outcome = run_import(corpus[name])
    assert outcome.rejected is None and outcome.errors == []
    assert outcome.table.encoding == encoding and outcome.table.delimiter == delimiter
    assert outcome.table.headers[0] == "Full name"  # no BOM left in the first header
    assert outcome.valid[0].phone == "+9779841000001"


def test_non_latin_and_accented_names_survive(corpus, run_import):
    assert run_import(corpus["utf16.csv"]).valid[0].name == "राम बहादुर थापा"
    assert run_import(corpus["utf8.csv"]).valid[0].location == "वडा ३"
    latin = run_import(corpus["latin1.csv"]).valid
    assert [r.name for r in latin] == ["José Müller", "Zoë Ñandú"]
    assert latin[0].location == "Señora's ward – 5" and latin[1].location == "€ market"


def test_extra_columns_are_ignored(corpus, run_import):
    outcome = run_import(corpus["extra_columns.csv"])
    assert "Notes" in outcome.table.headers
    assert len(outcome.valid) == 3 and outcome.errors == []


def test_formula_looking_cells_are_refused_but_a_plus_in_a_phone_is_fine(corpus, run_import):
    outcome = run_import(corpus["formulas.csv"])
    for row, first in ((2, "="), (3, "+"), (4, "-"), (5, "@")):
        assert outcome.messages(row) == [
            f"Starts with “{first}”, which spreadsheets run as a formula. Remove that first "
            "character."
        ]
    assert [e.field for e in outcome.errors if e.row == 6] == ["location"]
    assert [r.row for r in outcome.valid] == [7]
    assert outcome.valid[0].phone == "+9779841000006"


def test_a_comma_that_shifts_columns_is_named(corpus, run_import):
    outcome = run_import(corpus["unquoted_comma.csv"])
    assert any("columns that have no header" in m for m in outcome.messages(2))
    assert [r.row for r in outcome.valid] == [3]


def test_a_long_cell_is_a_row_error_naming_the_field(corpus, run_import):
    outcome = run_import(corpus["long_cell.csv"])
    (error,) = outcome.errors
    assert (error.row, error.field, error.column) == (2, "name", "Full name")
    assert error.message == "The value is longer than 1,000 characters."
    assert [r.row for r in outcome.valid] == [3]


def test_ten_thousand_copies_of_one_person_import_once(corpus, run_import):
    outcome = run_import(corpus["copies.csv"])
    assert [r.row for r in outcome.valid] == [2]
    assert len(outcome.errors) == 9_999
    assert {(e.field, e.message, e.kind) for e in outcome.errors} == {
        ("phone", "Same phone number as row 2.", DUPLICATE)
    }
    assert outcome.errors[-1].row == 10_001


def test_a_workbook_with_many_sheets_reads_the_first_or_the_one_named(corpus, run_import):
    first = run_import(corpus["three_sheets.xlsx"])
    assert first.table.sheets == ["Instructions", "Beneficiaries", "Summary"]
    assert first.table.sheet == "Instructions" and first.table.has_rows is False
    assert "Full name is required: choose the column that holds it." in first.mapping_problems

    named = run_import(corpus["three_sheets.xlsx"], sheet="Beneficiaries")
    assert named.table.sheet == "Beneficiaries"
    assert [r.name for r in named.valid] == ["Person 1", "Person 2", "Person 3"]

    missing = run_import(corpus["three_sheets.xlsx"], sheet="People")
    assert missing.rejected == "This workbook has no sheet named “People”."


def test_merged_cells_give_their_value_to_the_first_row_only(corpus, run_import):
    outcome = run_import(corpus["merged_cells.xlsx"])
    by_row = {r.row: r for r in outcome.valid}
    assert by_row[2].location == "Ward 1" and by_row[3].location is None
    assert outcome.messages(6) == ["A name is required."]


def test_a_merged_header_leaves_values_without_a_column(corpus, run_import):
    outcome = run_import(corpus["merged_header.xlsx"])
    assert outcome.table.headers == ["Full name", "Contact"]
    assert any("columns that have no header" in m for m in outcome.messages(2))


def test_what_excel_stores_is_read_as_meant(corpus, run_import):
    outcome = run_import(corpus["spreadsheet_values.xlsx"])
    by_row = {r.row: r for r in outcome.valid}
    assert by_row[2].phone == "+9779841000001"  # a float 9841000001.0
    assert by_row[2].date_of_birth == "1990-01-31" and by_row[2].consent is True
    assert by_row[2].location == "(27.7172, 85.324)"
    assert by_row[3].latitude == 27.5 and by_row[3].longitude == 85.1  # decimal commas
    assert by_row[4].date_of_birth == "1990-01-01"  # an Excel serial number
    # A formula without a cached value reads as empty; an error value is named.
    assert outcome.messages(5) == [
        "A phone number is required.",
        "The cell holds the spreadsheet error #N/A: fix it or type the value.",
    ]
    assert outcome.messages(6)[0].startswith("Starts with “=”")
    assert max(r.row for r in outcome.valid) < 7  # trailing empty rows are not rows


def test_a_workbook_as_excel_writes_it(corpus, run_import):
    outcome = run_import(corpus["excel_like.xlsx"])
    table = outcome.table
    assert table.sheets == ["Lookup", "People"] and table.sheet == "People"  # first visible
    assert table.headers == ["Full name", "Phone number", "Date of birth", "Location", "Consent"]
    by_row = {r.row: r for r in outcome.valid}
    assert sorted(by_row) == [2, 5]  # row 3 has #N/A; row 4 is missing from the file
    assert by_row[2].name == "Person 1" and by_row[2].date_of_birth == "1990-01-01"
    assert by_row[2].consent is True and by_row[2].location == "Ward 1"
    assert by_row[5].phone == "+9779841000005" and by_row[5].date_of_birth == "1985-12-31"
    assert outcome.messages(3) == [
        "The cell holds the spreadsheet error #N/A: fix it or type the value."
    ]


def test_the_excel_shaped_workbook_cells_keep_their_types(corpus):
    from portal.imports.parsing import open_table

    with open_table(corpus["excel_like.xlsx"], "people.xlsx") as table:
        rows = dict(table.rows())
    assert rows[2] == ["Person 1", 9841000001, datetime(1990, 1, 1), "Ward 1", True]
    assert rows[3] == ["PERSON 2", 9841000002, "#N/A", "", "no"]  # cached formula results
    assert rows[5][:3] == ["Person 5", "+977 9841000005", datetime(1985, 12, 31, 12)]
    assert 6 not in rows


def _variants(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = [data[: rng.randrange(1, len(data))] for _ in range(15)]
    flips = []
    for _ in range(15):
        changed = bytearray(data)
        for _ in range(rng.randrange(1, 6)):
            changed[rng.randrange(len(changed))] = rng.randrange(256)
        flips.append(bytes(changed))
    return cuts + flips


@pytest.mark.parametrize("name", ["excel_like.xlsx", "spreadsheet_values.xlsx", "utf8.csv"])
def test_damaged_copies_never_raise_anything_unexpected(corpus, run_import, tmp_path, name):
    for index, data in enumerate(_variants(corpus[name].read_bytes(), seed=len(name))):
        path = tmp_path / f"{index}-{name}"
        path.write_bytes(data)
        outcome = run_import(path)  # FileRejected is caught; anything else fails the test
        assert outcome.rejected or outcome.table is not None

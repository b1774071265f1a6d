from __future__ import annotations

import codecs
import re
import zipfile
from datetime import datetime

import pytest
from openpyxl import Workbook

from portal.imports.parsing import FileRejected, detect_delimiter, detect_encoding, open_table


def _csv(tmp_path, data: bytes, name: str = "people.csv"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _read(path, filename=None, sheet=None):
    with open_table(path, filename or path.name, sheet) as table:
        return table, list(table.rows())


def test_rows_are_numbered_as_a_spreadsheet_shows_them(tmp_path):
    data = (
        b"\r\n"
        b"Name,Phone\r\n"
        b'"Two\r\nlines",9841000001\r\n'
        b"\r\n"
        b"  Padded  , 9841000002 \r\n"
        b",\r\n"
        b",,,\r\n"
    )
    table, rows = _read(_csv(tmp_path, data))
    assert table.header_row == 2 and table.headers == ["Name", "Phone"]
    assert rows == [(3, ["Two\r\nlines", "9841000001"]), (5, ["Padded", "9841000002"])]


def test_rows_can_be_read_again_from_the_start(tmp_path):
    path = _csv(tmp_path, b"Name,Phone\nA,1\nB,2\n")
    with open_table(path, "people.csv") as table:
        first = list(table.rows())
        half = table.rows()
        next(half)
        assert list(table.rows()) == first == [(2, ["A", "1"]), (3, ["B", "2"])]
    assert table.has_rows


def test_short_and_long_rows_are_given_as_they_are(tmp_path):
    _, rows = _read(_csv(tmp_path, b"A,B,C\n1\n1,2,3,4\n"))
    assert rows == [(2, ["1"]), (3, ["1", "2", "3", "4"])]


@pytest.mark.parametrize(
    ("data", "delimiter"),
    [
        (b"Name;Phone;Village\nA;1;X\n", ";"),
        (b"Name\tPhone\nA\t1\n", "\t"),
        (b"Name|Phone\nA|1\n", "|"),
        (b'"Name, full";Phone\n"A, B";1\n', ";"),
        (b"sep=|\nName|Phone\nA|1\n", "|"),
        (b"Name\nA\n", ","),
    ],
)
def test_the_delimiter_is_found(tmp_path, data, delimiter):
    table, rows = _read(_csv(tmp_path, data))
    assert table.delimiter == delimiter
    assert table.header_row == 1 and rows[0][0] == 2  # a sep= line is not a row


def test_a_tsv_file_prefers_tabs():
    assert detect_delimiter("a,b\tc", ".tsv") == "\t"
    assert detect_delimiter("a,b,c\td", ".csv") == ","


def test_old_mac_line_endings(tmp_path):
    _, rows = _read(_csv(tmp_path, b"Name,Phone\rA,1\rB,2\r"))
    assert rows == [(2, ["A", "1"]), (3, ["B", "2"])]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (codecs.BOM_UTF8 + b"a,b", "utf-8-sig"),
        ("a,b".encode("utf-16"), "utf-16"),
        ("a,b".encode("utf-32"), "utf-32"),
        ("Name,Phone\nRam,1\n".encode("utf-16-le"), "utf-16-le"),
        ("Name,Phone\nRam,1\n".encode("utf-16-be"), "utf-16-be"),
        ("Nāma,फोन".encode(), "utf-8"),
        ("José".encode("cp1252"), "cp1252"),
    ],
)
def test_encoding_detection(data, expected):
    assert detect_encoding(data, complete=True) == expected


def test_a_multibyte_character_cut_by_the_sample_is_still_utf8():
    cut = ("a" * 9 + "é").encode()[:-1]
    assert detect_encoding(cut, complete=False) == "utf-8"


def test_bom_less_utf16_is_read(tmp_path):
    table, rows = _read(_csv(tmp_path, "Name,Phone\nसीता,1\n".encode("utf-16-le")))
    assert table.encoding == "UTF-16" and rows == [(2, ["सीता", "1"])]


def test_a_windows_byte_after_an_ascii_start_is_read_as_windows_1252(tmp_path):
    data = b"Name,Phone\n" + b"Person,9841000001\n" * 5000 + "Zoë,1\n".encode("cp1252")
    table, rows = _read(_csv(tmp_path, data))
    assert table.encoding == "UTF-8"
    assert rows[-1] == (5002, ["Zoë", "1"])


def test_broken_utf16_is_refused_naming_where(tmp_path):
    broken = b"\x00\xd8\x41\x00"  # a lone surrogate
    with pytest.raises(FileRejected, match="The file starts like UTF-16 text but cannot be read"):
        _read(_csv(tmp_path, "Name,Phone\nA,1\n".encode("utf-16") + broken))
    later = ("Name,Phone\n" + "A,1\n" * 20_000).encode("utf-16") + broken
    with pytest.raises(FileRejected, match=r"cannot be read as UTF-16 past row \d+: it mixes"):
        _read(_csv(tmp_path, later))


def test_a_very_long_line_is_refused_not_read_into_memory(tmp_path):
    data = b"Name,Phone\n" + b"x" * 2_100_000 + b"\n"
    with pytest.raises(FileRejected, match="Row 2 holds a value longer than 1,000,000"):
        _read(_csv(tmp_path, data))


@pytest.mark.parametrize(
    ("filename", "message"),
    [
        ("people.pdf", "Upload a .csv or .xlsx file (.pdf is not supported)."),
        ("people", "Upload a .csv or .xlsx file (a file without an extension is not supported)."),
        ("people.xls", "Old-format Excel files (.xls) cannot be read"),
    ],
)
def test_unsupported_extensions(tmp_path, filename, message):
    with pytest.raises(FileRejected, match=re.escape(message)):
        _read(_csv(tmp_path, b"Name,Phone\nA,1\n"), filename)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"Name,,Phone,", "Column B has no header"),
        (b",,Name,Phone", "Columns A and B have no header"),
        (b"Name,Phone,NAME", "Columns A and C have the same header “Name”."),
        (b"Name," + b"x" * 201, "Row 1 must hold column names, but in it column B holds more"),
    ],
)
def test_bad_headers_are_refused(tmp_path, header, message):
    with pytest.raises(FileRejected, match=re.escape(message)):
        _read(_csv(tmp_path, header + b"\nA,1\n"))


def test_trailing_blank_headers_are_dropped(tmp_path):
    table, _ = _read(_csv(tmp_path, b"Name,Phone,,\nA,1,,\n"))
    assert table.headers == ["Name", "Phone"]


def _workbook(tmp_path, build, name="people.xlsx"):
    workbook = Workbook()
    build(workbook)
    path = tmp_path / name
    workbook.save(path)
    return path


def test_xlsx_values_keep_their_types(tmp_path):
    def build(workbook):
        sheet = workbook.active
        sheet.append(["Name", "Phone", "Born", "Consent", 2024])
        sheet.append(["  Ram  ", 9841000001, datetime(1990, 1, 31), True, None, 2.5])

    table, rows = _read(_workbook(tmp_path, build))
    assert table.kind == "xlsx" and table.headers == ["Name", "Phone", "Born", "Consent", "2024"]
    assert rows == [(2, ["Ram", 9841000001, datetime(1990, 1, 31), True, "", 2.5])]


def test_an_empty_sheet_is_named(tmp_path):
    def build(workbook):
        workbook.active.title = "Blank"

    with pytest.raises(FileRejected, match=re.escape("The sheet “Blank” is empty.")):
        _read(_workbook(tmp_path, build))


def test_a_hidden_first_sheet_is_passed_over(tmp_path):
    def build(workbook):
        lookup = workbook.active
        lookup.title = "Lists"
        lookup.append(["female", "male"])
        lookup.sheet_state = "hidden"
        people = workbook.create_sheet("People")
        people.append(["Name", "Phone"])
        people.append(["A", "1"])

    table, rows = _read(_workbook(tmp_path, build))
    assert table.sheets == ["Lists", "People"] and table.sheet == "People"
    assert rows == [(2, ["A", "1"])]


def test_a_wrong_sheet_size_does_not_cut_rows_off(tmp_path):
    def build(workbook):
        for n in range(1, 6):
            workbook.active.append([f"Row {n}", n])

    path = _workbook(tmp_path, build)
    rewritten = tmp_path / "rewritten.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rewritten, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<dimension ref="A1:B5"', b'<dimension ref="A1"')
                assert b'ref="A1"' in data
            target.writestr(item, data)
    _, rows = _read(rewritten)
    assert [number for number, _ in rows] == [2, 3, 4, 5]


def test_an_xlsx_under_any_file_name_is_read_by_its_upload_name(tmp_path):
    def build(workbook):
        workbook.active.append(["Name", "Phone"])
        workbook.active.append(["A", "1"])

    path = _workbook(tmp_path, build, name="upload.bin")
    _, rows = _read(path, "people.xlsx")
    assert rows == [(2, ["A", "1"])]


def test_a_zip_that_is_not_a_workbook(tmp_path):
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("photo.txt", "not a workbook")
    with pytest.raises(FileRejected, match="ZIP archive but not an Excel workbook"):
        _read(path)

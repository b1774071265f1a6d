"""Reading an uploaded CSV or XLSX file row by row, without holding it in memory.

``open_table`` checks what the file really is before anything reads it (an image renamed
``.csv`` is named as an image), finds the header row, and gives a ``Table`` whose ``rows()``
streams ``(row_number, cells)``. Row numbers are the ones a spreadsheet shows: the record number
in a CSV (a quoted value spanning lines is still one row; blank lines count) and the row number
in a sheet. Blank rows are skipped. Cells are stripped strings, or for XLSX the values Excel
stored (int, float, bool, datetime); empty cells are ``""``. A file that cannot be imported at
all raises ``FileRejected`` with a message for the user; a bad value in one row is left to
validation.

Encodings (CSV): a BOM decides (UTF-8, UTF-16 LE/BE, UTF-32); without one, UTF-16 is recognised
by its zero bytes; otherwise UTF-8 when the first 64 KiB decode as UTF-8, else Windows-1252. A
byte that is invalid later on in a "UTF-8" file is read as Windows-1252 (then Latin-1), because
spreadsheets saved on Windows often mix in a few such bytes after an ASCII-only start.

XLSX: the first visible sheet unless one is named. openpyxl's reader opens the workbook part,
styles and shared strings (``_Workbook``) and decodes cells; the sheet itself is streamed by
``_RowParser``, which forgets each row once read, so memory stays flat however many rows there
are, except for the shared-string table (each distinct text once), which openpyxl loads whole.
The sheet's stated dimensions are not used (some tools write wrong ones). Non-anchor cells of a
merged range read as empty. Formulas give the value Excel cached when it last saved the file, or
empty if there is none (files written by scripts often have none).
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path
from typing import TextIO
from xml.etree.ElementTree import iterparse

from openpyxl.reader.excel import ExcelReader
from openpyxl.styles.stylesheet import apply_stylesheet
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import coordinate_to_tuple
from openpyxl.worksheet._reader import DATA_TAG, ROW_TAG, WorkSheetParser
from openpyxl.xml.constants import SHEET_MAIN_NS

log = logging.getLogger(__name__)

CSV_EXTENSIONS = {".csv", ".tsv", ".txt"}
XLSX_EXTENSIONS = {".xlsx", ".xlsm"}
SAMPLE_BYTES = 64 * 1024
# Longer than any real value; validation reports cells over its own, much smaller cap as row
# errors. Beyond these limits the file is rejected instead of being read into memory: a value
# this long is almost always a missing closing quote swallowing the rest of the file.
FIELD_LIMIT = 1_000_000
LINE_LIMIT = 2 * FIELD_LIMIT
HEADER_LIMIT = 200
# Over this much uncompressed XML the workbook is refused before openpyxl reads it; the shared
# strings (kept in memory) get a lower limit than the streamed sheets.
XLSX_MAX_UNCOMPRESSED = 4 * 1024**3
XLSX_MAX_SHARED_STRINGS = 512 * 1024**2
XLSX_MAX_COLUMNS = 16_384  # Excel's own limit
# Elements a sheet part may hold outside its rows (<cols> has at most one per column), and
# within one row (a cell is two or three): parsed elements stay in memory until their row or the
# sheet data ends, so these bound memory whatever a compressed part expands to.
XLSX_MAX_LOOSE_ELEMENTS = 100_000
XLSX_MAX_ROW_ELEMENTS = 8 * XLSX_MAX_COLUMNS
_XLSX_CHUNK = 500
DELIMITERS = (",", ";", "\t", "|")

# csv's limit is process-wide; this module is what reads untrusted CSV, so it sets it.
csv.field_size_limit(FIELD_LIMIT)

Cell = str | int | float | bool | datetime | date | time
Row = tuple[int, list[Cell]]


class FileRejected(Exception):
    """The file as a whole cannot be imported; the message is for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _cp1252_or_latin1(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(_one_byte(b) for b in bad), exc.end


def _one_byte(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
        return bytes([byte]).decode("latin-1")


def _latin1(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error("portal_import_cp1252", _cp1252_or_latin1)
codecs.register_error("portal_import_latin1", _latin1)

# Codec, error handler, and the name shown to the user.
_ENCODINGS = {
    "utf-8": ("utf-8", "portal_import_cp1252", "UTF-8"),
    "utf-8-sig": ("utf-8-sig", "portal_import_cp1252", "UTF-8 (with BOM)"),
    "cp1252": ("cp1252", "portal_import_latin1", "Windows-1252 / Latin-1"),
    "utf-16": ("utf-16", "strict", "UTF-16"),
    "utf-16-le": ("utf-16-le", "strict", "UTF-16"),
    "utf-16-be": ("utf-16-be", "strict", "UTF-16"),
    "utf-32": ("utf-32", "strict", "UTF-32"),
}

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-format Excel (.xls) or password-protected file"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one)"),
)


def _identify(head: bytes) -> str | None:
    for magic, what in _SIGNATURES:
        if head.startswith(magic):
            return what
    if head[4:8] == b"ftyp":  # HEIC photos from phones, MP4 videos
        return "a photo or video (HEIC/MP4)"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    return None


class Table:
    """An opened file: its headers, and its data rows streamed on each call of ``rows()``."""

    def __init__(
        self,
        *,
        kind: str,
        headers: list[str],
        header_row: int,
        has_rows: bool,
        records: Callable[[], Iterator[Row]],
        sheets: list[str] | None = None,
        sheet: str | None = None,
        encoding: str | None = None,
        delimiter: str | None = None,
    ):
        self.kind = kind
        self.headers = headers
        self.header_row = header_row
        # False when the file has headers and nothing under them: rows() then yields nothing.
        self.has_rows = has_rows
        self.sheets = sheets or []
        self.sheet = sheet
        self.encoding = encoding
        self.delimiter = delimiter
        self._records = records
        self._live: list[Iterator[Row]] = []

    def rows(self) -> Iterator[Row]:
        """``(row_number, cells)`` of each non-blank row under the header, from the start."""
        rows = self._rows()
        self._live.append(rows)
        return rows

    def _rows(self) -> Iterator[Row]:
        for number, cells in self._records():
            if number > self.header_row and any(cell != "" for cell in cells):
                yield number, cells

    def close(self) -> None:
        for rows in self._live:
            rows.close()  # type: ignore[attr-defined]
        self._live.clear()


@contextmanager
def open_table(path: Path, filename: str, sheet: str | None = None) -> Iterator[Table]:
    """Open an uploaded file (``filename`` is the name it was uploaded with, for its extension)."""
    extension = Path(filename).suffix.lower()
    if extension in CSV_EXTENSIONS:
        table, cleanup = _open_csv(Path(path), extension), None
    elif extension in XLSX_EXTENSIONS:
        table, cleanup = _open_xlsx(Path(path), sheet)
    elif extension == ".xls":
        raise FileRejected(
            "Old-format Excel files (.xls) cannot be read: save it as .xlsx or CSV and try again."
        )
    else:
        shown = extension or "a file without an extension"
        raise FileRejected(f"Upload a .csv or .xlsx file ({shown} is not supported).")
    try:
        yield table
    finally:
        table.close()
        if cleanup is not None:
            cleanup()


# CSV ------------------------------------------------------------------------------------------


def _read_head(path: Path) -> tuple[bytes, bool]:
    """The first bytes of the file, and whether they are the whole of it."""
    with path.open("rb") as raw:
        head = raw.read(SAMPLE_BYTES)
        return head, raw.read(1) == b""


def _utf16_without_bom(sample: bytes) -> str | None:
    sample = sample[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    zero_even, zero_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if zero_odd > 0.4 and zero_even < 0.05:
        return "utf-16-le"
    if zero_even > 0.4 and zero_odd < 0.05:
        return "utf-16-be"
    return None


def _looks_binary(sample: bytes) -> bool:
    if b"\x00" in sample:
        return True
    controls = sum(1 for b in sample if (b < 32 and b not in (9, 10, 12, 13)) or b == 127)
    return controls > max(2, len(sample) // 50)


def detect_encoding(sample: bytes, complete: bool) -> str:
    """The key in ``_ENCODINGS`` for a CSV file starting with ``sample``; rejects non-text."""
    if sample.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    found = _utf16_without_bom(sample)
    if found:
        return found
    if _looks_binary(sample):
        raise FileRejected(
            "This file is not text: it contains binary data. Upload a CSV file saved as text, "
            "or an .xlsx workbook."
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=complete)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _count_outside_quotes(line: str, delimiter: str) -> int:
    count, quoted = 0, False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif ch == delimiter and not quoted:
            count += 1
    return count


def detect_delimiter(first_line: str, extension: str = ".csv") -> str:
    """The candidate that splits the header line into the most columns (ties: , ; tab |)."""
    counts = {d: _count_outside_quotes(first_line, d) for d in DELIMITERS}
    if extension == ".tsv" and counts["\t"]:
        return "\t"
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first of equal counts
    return best if counts[best] else ","


def _text_stream(path: Path, encoding: str) -> TextIO:
    codec, errors, _ = _ENCODINGS[encoding]
    # newline="" hands \r\n, \r and \n through untranslated, as csv needs for quoted newlines.
    return io.TextIOWrapper(path.open("rb"), encoding=codec, errors=errors, newline="")


class _LineTooLong(Exception):
    pass


def _lines(text: TextIO) -> Iterator[str]:
    while line := text.readline(LINE_LIMIT + 1):
        if len(line) > LINE_LIMIT:
            raise _LineTooLong
        yield line


def _too_long(number: int) -> FileRejected:
    return FileRejected(
        f"Row {number} holds a value longer than {FIELD_LIMIT:,} characters, so the file "
        "cannot be read. It is damaged or not a beneficiary list (a value missing its closing "
        "quote often causes this)."
    )


def _csv_records(path: Path, encoding: str, delimiter: str, skip_first: bool) -> Iterator[Row]:
    """Every record with its number, blank ones included; ``skip_first`` drops a sep= line."""
    with _text_stream(path, encoding) as text:
        reader = csv.reader(_lines(text), delimiter=delimiter, quotechar='"', doublequote=True)
        number = -1 if skip_first else 0
        while True:
            number += 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except _LineTooLong:
                raise _too_long(number) from None
            except csv.Error as exc:
                if "field larger than field limit" in str(exc):
                    raise _too_long(number) from None
                raise FileRejected(f"Row {number} cannot be read as CSV ({exc}).") from None
            except UnicodeDecodeError:
                # Decoding runs ahead of the rows, so this is where reading stopped, not the
                # exact row at fault.
                raise FileRejected(
                    f"The file cannot be read as {_ENCODINGS[encoding][2]} past row {number - 1}: "
                    "it mixes encodings. Save it again as “CSV UTF-8” and upload that."
                ) from None
            if number > 0:
                yield number, [cell.strip() for cell in record]


def _first_line(sample: bytes, encoding: str) -> str:
    codec, errors, _ = _ENCODINGS[encoding]
    try:
        text = codecs.getincrementaldecoder(codec)(errors=errors).decode(sample, final=False)
    except UnicodeDecodeError:
        raise FileRejected(
            f"The file starts like {_ENCODINGS[encoding][2]} text but cannot be read as such. "
            "Save it again as “CSV UTF-8” and upload that."
        ) from None
    return next((line for line in text.splitlines() if line.strip()), "")


def _open_csv(path: Path, extension: str) -> Table:
    sample, complete = _read_head(path)
    if not sample:
        raise FileRejected("The file is empty.")
    what = _identify(sample)
    if what:
        hint = (
            " If it is an .xlsx workbook, upload it with the .xlsx extension."
            if what.startswith("a ZIP")
            else ""
        )
        raise FileRejected(f"This file is {what}, not a CSV file.{hint}")
    encoding = detect_encoding(sample, complete)
    first = _first_line(sample, encoding)
    # Excel reads and writes a first line "sep=;" naming the delimiter; it is not a row.
    skip_first = first.strip().lower().startswith("sep=") and len(first.strip()) == 5
    delimiter = first.strip()[4] if skip_first else detect_delimiter(first, extension)

    def records() -> Iterator[Row]:
        return _csv_records(path, encoding, delimiter, skip_first)

    headers, header_row, has_rows = _find_header(records())
    return Table(
        kind="csv",
        headers=headers,
        header_row=header_row,
        has_rows=has_rows,
        records=records,
        encoding=_ENCODINGS[encoding][2],
        delimiter=delimiter,
    )


# Headers --------------------------------------------------------------------------------------


def _header_text(value: Cell) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def _column_list(letters: list[str]) -> str:
    if len(letters) == 1:
        return f"Column {letters[0]}"
    return f"Columns {', '.join(letters[:-1])} and {letters[-1]}"


def check_headers(cells: list[Cell], header_row: int) -> list[str]:
    """The header row's names; rejects blank, duplicated and over-long ones."""
    headers = [_header_text(cell) for cell in cells]
    while headers and not headers[-1]:
        headers.pop()
    blank = [get_column_letter(i + 1) for i, h in enumerate(headers) if not h]
    if blank:
        verb = "has" if len(blank) == 1 else "have"
        raise FileRejected(
            f"{_column_list(blank)} {verb} no header in the header row (row {header_row}). "
            "Give every column a name, or delete the empty column."
        )
    long = [get_column_letter(i + 1) for i, h in enumerate(headers) if len(h) > HEADER_LIMIT]
    if long:
        verb = "holds" if len(long) == 1 else "hold"
        raise FileRejected(
            f"Row {header_row} must hold column names, but in it "
            f"{_column_list(long)[0].lower()}{_column_list(long)[1:]} {verb} more than "
            f"{HEADER_LIMIT} characters."
        )
    seen: dict[str, list[int]] = {}
    for i, header in enumerate(headers):
        seen.setdefault(header.casefold(), []).append(i)
    for positions in seen.values():
        if len(positions) > 1:
            letters = [get_column_letter(i + 1) for i in positions]
            raise FileRejected(
                f"{_column_list(letters)} have the same header “{headers[positions[0]]}”. "
                "Give each column a different name."
            )
    return headers


def _find_header(records: Iterator[Row]) -> tuple[list[str], int, bool]:
    """Headers from the first non-blank row, its number, and whether any row follows it."""
    try:
        for number, cells in records:
            if any(cell != "" for cell in cells):
                headers = check_headers(cells, number)
                has_rows = any(any(cell != "" for cell in rest) for _, rest in records)
                return headers, number, has_rows
    finally:
        records.close()  # type: ignore[attr-defined]
    raise FileRejected("The file is empty: it has no rows with any value.")


# XLSX -----------------------------------------------------------------------------------------


@contextmanager
def _quiet_openpyxl() -> Iterator[None]:
    # openpyxl warns about workbook features it drops (data validation extensions, drawings),
    # which do not matter for reading values.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl(\.|$)")
        yield


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except Exception:  # zipfile raises many kinds on damaged archives, not only BadZipFile
        raise FileRejected(
            "This .xlsx file is damaged: it cannot be opened as a workbook."
        ) from None
    total = sum(m.file_size for m in members)
    strings = sum(m.file_size for m in members if m.filename.endswith("sharedStrings.xml"))
    if total > XLSX_MAX_UNCOMPRESSED or strings > XLSX_MAX_SHARED_STRINGS:
        raise FileRejected(
            "This workbook is too large to import in one file. Split it, or save it as CSV."
        )
    if not any(m.filename == "[Content_Types].xml" for m in members):
        raise FileRejected("This file is a ZIP archive but not an Excel workbook.")


def _xlsx_value(value: object) -> Cell:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float | bool | datetime | date | time):
        return value
    return str(value).strip()  # timedelta and anything newer openpyxl may give


def sheet_names(path: Path, filename: str) -> tuple[list[str], str | None]:
    """A workbook's sheet names and the one read when none is named; ([], None) for a CSV file
    or a file that cannot be opened as a workbook."""
    if Path(filename).suffix.lower() not in XLSX_EXTENSIONS:
        return [], None
    try:
        sample, _ = _read_head(Path(path))
        if not sample.startswith(b"PK\x03\x04"):
            return [], None
        _check_zip(Path(path))
        workbook = _Workbook(Path(path))
    except FileRejected:
        return [], None
    try:
        names = list(workbook.sheets)
        return names, _default_sheet(workbook, names)
    finally:
        workbook.close()


def _default_sheet(workbook: _Workbook, names: list[str]) -> str | None:
    # The first sheet a person sees: a hidden first sheet is usually a lookup list.
    return next(iter(workbook.visible), names[0] if names else None)


def _open_xlsx(path: Path, sheet: str | None) -> tuple[Table, Callable[[], None]]:
    sample, _ = _read_head(path)
    if not sample:
        raise FileRejected("The file is empty.")
    if not sample.startswith(b"PK\x03\x04"):
        what = _identify(sample)
        if what is None and not _looks_binary(sample):
            raise FileRejected(
                "This file is text, not an Excel workbook. If it is a CSV file, upload it with "
                "the .csv extension."
            )
        if what is None:
            raise FileRejected("This file is not an Excel workbook (.xlsx).")
        if "xls" in what:
            raise FileRejected(
                "This is an old-format Excel (.xls) file or a password-protected workbook. "
                "Save it as .xlsx without a password, or as CSV."
            )
        raise FileRejected(f"This file is {what}, not an Excel workbook.")
    _check_zip(path)
    workbook = _Workbook(path)
    try:
        names = list(workbook.sheets)
        if not names:
            raise FileRejected("This workbook has no worksheet with cells.")
        chosen = sheet or _default_sheet(workbook, names)
        if chosen not in workbook.sheets:
            raise FileRejected(f"This workbook has no sheet named “{chosen}”.")

        def records() -> Iterator[Row]:
            return _xlsx_records(workbook, chosen)

        try:
            headers, header_row, has_rows = _find_header(records())
        except FileRejected as exc:
            if "empty" in exc.message:
                raise FileRejected(f"The sheet “{chosen}” is empty.") from None
            raise
    except BaseException:
        workbook.close()
        raise
    table = Table(
        kind="xlsx",
        headers=headers,
        header_row=header_row,
        has_rows=has_rows,
        records=records,
        sheets=names,
        sheet=chosen,
    )
    return table, workbook.close


class _Workbook:
    """What reading cell values needs from an .xlsx, and nothing more.

    openpyxl's ``load_workbook(read_only=True)`` parses every sheet that lacks a <dimension>
    element (openpyxl's own write-only files, among others) in full just to size it, holding its
    rows (about 85 bytes each) until done; this reads only the workbook part, the shared
    strings and the styles (for which numbers are dates), and streams the chosen sheet with
    ``_RowParser``. Relies on openpyxl 3.1's reader internals (the version is pinned). Sheets are
    parsed with the standard library's C parser rather than defusedxml's pure-Python one (five
    times faster): expat 2.4.1+ refuses entity-expansion bombs itself, and ElementTree never
    fetches external entities or DTDs.
    """

    def __init__(self, path: Path):
        self._file = path.open("rb")
        try:
            with _quiet_openpyxl():
                # A file object, not a path: openpyxl refuses paths not ending in .xlsx.
                reader = ExcelReader(self._file, read_only=True, data_only=True, keep_links=False)
                reader.read_manifest()
                reader.read_strings()
                reader.read_workbook()
                apply_stylesheet(reader.archive, reader.wb)
                found = [
                    (sheet, rel.target)
                    for sheet, rel in reader.parser.find_sheets()
                    if rel.target in reader.valid_files and "chartsheet" not in rel.Type
                ]
        except FileRejected:
            self._file.close()
            raise
        except Exception as exc:  # openpyxl fails in many ways on files that are not its own
            self._file.close()
            log.info("unreadable workbook: %s", type(exc).__name__)
            raise FileRejected(
                "This .xlsx file cannot be read as an Excel workbook; it may be damaged. Open it "
                "in Excel, save it again, and upload that."
            ) from None
        self._reader = reader
        self.sheets = {sheet.name: target for sheet, target in found}
        self.visible = [sheet.name for sheet, _ in found if sheet.state in (None, "visible")]

    def rows(self, name: str) -> Iterator[tuple[int, list[object]]]:
        workbook = self._reader.wb
        with self._reader.archive.open(self.sheets[name]) as source:
            parser = _RowParser(
                source,
                self._reader.shared_strings,
                data_only=True,
                epoch=workbook.epoch,
                date_formats=workbook._date_formats,
                timedelta_formats=workbook._timedelta_formats,
            )
            for number, cells in parser.parse():
                width = min(max((c["column"] for c in cells), default=0), XLSX_MAX_COLUMNS)
                values: list[object] = [None] * width
                for cell in cells:
                    if cell["column"] <= width:
                        values[cell["column"] - 1] = cell["value"]
                yield number, values

    def close(self) -> None:
        self._reader.archive.close()
        self._file.close()


class _RowParser(WorkSheetParser):
    """openpyxl's sheet parser, reduced to the cell values and made to forget finished rows.

    openpyxl clears each parsed row but leaves it attached to <sheetData> (about 85 bytes a
    row) and keeps a dict for every row with a height or style; this detaches each row once read
    and keeps nothing. Nothing after <sheetData> (merged ranges, extensions) is read.
    """

    def parse(self) -> Iterator[tuple[int, list[dict]]]:
        sheet_data = None
        in_row = loose = in_this_row = 0
        # Safe on this input: see _Workbook (and the entity-bomb test in the corpus).
        events = iterparse(self.source, events=("start", "end"))  # noqa: S314
        for event, element in events:
            if event == "start":
                if element.tag == DATA_TAG:
                    sheet_data = element
                elif element.tag == ROW_TAG:
                    in_row, in_this_row = in_row + 1, 0
                continue
            if element.tag == ROW_TAG:
                in_row -= 1
                row = self.parse_row(element)
                element.clear()
                if sheet_data is not None:
                    sheet_data.remove(element)
                yield row
            elif element.tag == DATA_TAG:
                return
            elif in_row:
                in_this_row += 1
                if in_this_row > XLSX_MAX_ROW_ELEMENTS:
                    raise FileRejected("A row of this sheet has more cells than Excel allows.")
            else:
                loose += 1
                if loose > XLSX_MAX_LOOSE_ELEMENTS:
                    raise FileRejected("This sheet holds too much besides its rows.")

    def parse_row(self, row) -> tuple[int, list[dict]]:
        number = row.get("r")
        self.row_counter = int(float(number)) if number else self.row_counter + 1
        self.col_counter = 0
        return self.row_counter, [self.parse_cell(cell) for cell in row]

    def parse_cell(self, element) -> dict:
        if element.get("t") != "inlineStr":
            return super().parse_cell(element)
        # Inline strings (written by openpyxl and many exporters): openpyxl builds a rich-text
        # object per cell for them, which costs more than the rest of the row together.
        coordinate = element.get("r")
        if coordinate:
            row, column = coordinate_to_tuple(coordinate)
            self.col_counter = column
        else:
            self.col_counter += 1
            row, column = self.row_counter, self.col_counter
        inline = element.find(_INLINE)
        value = None if inline is None else "".join(_inline_text(inline))
        return {"row": row, "column": column, "value": value, "data_type": "s", "style_id": 0}


_INLINE, _TEXT, _RUN = (f"{{{SHEET_MAIN_NS}}}{tag}" for tag in ("is", "t", "r"))


def _inline_text(inline) -> Iterator[str]:
    """The text of plain and rich-text runs; phonetic hints (rPh) are not part of the value."""
    for child in inline:
        if child.tag == _TEXT:
            yield child.text or ""
        elif child.tag == _RUN:
            text = child.find(_TEXT)
            if text is not None:
                yield text.text or ""


def _xlsx_records(workbook: _Workbook, sheet: str) -> Iterator[Row]:
    rows = workbook.rows(sheet)
    number = 0
    while True:
        # Read a bounded chunk with openpyxl's warnings silenced, then hand it out.
        try:
            with _quiet_openpyxl():
                chunk = [row for _, row in zip(range(_XLSX_CHUNK), rows, strict=False)]
        except FileRejected:
            raise
        except Exception as exc:
            log.info("unreadable worksheet: %s", type(exc).__name__)
            where = f" after row {number}" if number else ""
            raise FileRejected(
                f"The sheet cannot be read{where}; the file may be damaged. Open it in Excel, "
                "save it again, and upload that."
            ) from None
        if not chunk:
            return
        for number, values in chunk:
            yield number, [_xlsx_value(value) for value in values]

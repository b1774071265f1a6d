"""Beneficiary exports: the list as filtered, to CSV or XLSX, streamed in constant memory.

Personal data columns only for users who may read personal data. Every text cell is escaped
against formula injection: a value that a spreadsheet could take for a formula (it starts with
``= + - @``, a tab or a carriage return) gets a leading apostrophe, unless it is a plain signed
number such as a phone number in E.164 (``PLAIN_NUMBER``). In XLSX every cell is also an
inline string cell with the text number format, which a spreadsheet never evaluates.

The XLSX is written row by row straight into the response through a streaming ZIP: nothing is
held in memory and, unlike openpyxl's write-only mode (which spills the sheet to a temporary
file), no personal data touches the disk in clear.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from xml.sax.saxutils import escape as xml_escape

from openpyxl.utils import get_column_letter
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from portal import events, inputs
from portal.accounts.models import User
from portal.beneficiaries import services
from portal.beneficiaries.models import Beneficiary, ProjectBeneficiary
from portal.extensions import db
from portal.projects import services as projects
from portal.projects.models import Project
from portal.timeutil import utcnow

PII = "beneficiary.pii.read"
BATCH = 500
RECORD_COLUMNS = (
    ("ref", "Reference"),
    ("status", "Status"),
    ("gender", "Gender"),
    ("language", "Language"),
    ("projects", "Projects"),
    ("enrolled", "Enrolled"),
)
PII_COLUMNS = (
    ("name", "Name"),
    ("phone", "Phone"),
    ("national_id", "National ID"),
    ("date_of_birth", "Date of birth"),
    ("location", "Location"),
)
# What a spreadsheet may read as the start of a formula (with the full-width forms some
# East Asian locales convert).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
# A sign and ASCII digits alone (a phone number in E.164, a negative amount) is a number to a
# spreadsheet, never a formula that can call anything: it is left as it is, so an exported
# phone list goes straight into an SMS tool. (A spreadsheet opening the CSV may still show
# such a phone as a number; the XLSX keeps it a text cell.)
PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?")
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape_cell(value) -> str:
    """The value as text that no spreadsheet will evaluate as a formula.

    Control characters are dropped: the input rule refuses them, but rows written before it
    may hold some, and a terminal or spreadsheet acts on ESC and BEL.
    """
    text = inputs.clean_for_export("" if value is None else str(value))
    start = text.lstrip(" \n")
    if start.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(start):
        return "'" + text
    return text


@dataclass
class Export:
    """What to export, by ids and values only: the rows are read while the response streams,
    after the request's session has ended, so no ORM object may be carried over."""

    user_id: int
    params: services.ListQuery
    with_pii: bool
    columns: tuple[tuple[str, str], ...] = field(default=())

    @property
    def headers(self) -> list[str]:
        return [label for _, label in self.columns]

    @property
    def user(self) -> User:
        return db.session.get(User, self.user_id)


def prepare(user, params: services.ListQuery) -> Export:
    with_pii = user.can(PII)
    columns = RECORD_COLUMNS[:1] + (PII_COLUMNS if with_pii else ()) + RECORD_COLUMNS[1:]
    return Export(user_id=user.id, params=params, with_pii=with_pii, columns=columns)


def count(export: Export) -> int:
    query = services.search(export.user, export.params).order_by(None)
    return db.session.scalar(select(func.count()).select_from(query.subquery()))


def record(export: Export, fmt: str, rows: int) -> None:
    """Audit the export: who (the actor), how many rows, with or without personal data.

    The search term is not recorded: it may be a phone number or a national ID.
    """
    params = export.params
    kind = "with personal data" if export.with_pii else "without personal data"
    events.beneficiaries_exported.send(
        "beneficiaries",
        action="beneficiaries.exported",
        summary=f"{rows} beneficiaries exported to {fmt.upper()} {kind}",
        project_id=params.project_id,
        data={
            "format": fmt,
            "rows": rows,
            "pii": export.with_pii,
            "filters": {
                "project_id": params.project_id,
                "group_id": params.group_id,
                "status": params.status or None,
                "sort": params.sort,
                "search": bool(params.q.strip()),
            },
        },
    )


def _project_names(user, ids: list[int]) -> dict[int, list[str]]:
    query = (
        select(ProjectBeneficiary.beneficiary_id, Project.name)
        .join(Project, Project.id == ProjectBeneficiary.project_id)
        .where(ProjectBeneficiary.beneficiary_id.in_(ids))
        .order_by(Project.name)
    )
    visible = projects.visible_project_ids(user)
    if visible is not None:
        query = query.where(Project.id.in_(visible))
    names: dict[int, list[str]] = {}
    for person_id, name in db.session.execute(query):
        names.setdefault(person_id, []).append(name)
    return names


def rows(export: Export) -> Iterator[list[str]]:
    """The escaped cells of each matching beneficiary, read ``BATCH`` rows at a time."""
    user = export.user
    query = services.search(user, export.params).execution_options(yield_per=BATCH)
    if export.with_pii:
        query = query.options(joinedload(Beneficiary.pii))
    for batch in db.session.scalars(query).partitions():
        names = _project_names(user, [p.id for p in batch])
        for person in batch:
            values = {
                "ref": person.ref,
                "status": person.status,
                "gender": person.gender,
                "language": person.language,
                "projects": "; ".join(names.get(person.id, ())),
                "enrolled": person.created_at.strftime("%Y-%m-%d"),
            }
            if export.with_pii:
                pii = person.pii
                values.update(
                    name=pii.name,
                    phone=pii.phone,
                    national_id=pii.national_id,
                    date_of_birth=pii.date_of_birth,
                    location=pii.location,
                )
            yield [escape_cell(values[key]) for key, _ in export.columns]


def filename(fmt: str) -> str:
    return f"beneficiaries-{utcnow().strftime('%Y%m%d-%H%M')}.{fmt}"


# --- CSV --------------------------------------------------------------------------------------


def csv_chunks(export: Export) -> Iterator[bytes]:
    return csv_stream(export.headers, rows(export))


def csv_stream(headers: list[str], cells_of_rows: Iterable[list[str]]) -> Iterator[bytes]:
    """UTF-8 with a byte order mark (so spreadsheet programs read names right), in batches.
    The rows' cells come escaped (``escape_cell``); the headers are escaped here."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow([escape_cell(h) for h in headers])
    pending = 0
    for cells in cells_of_rows:
        writer.writerow(cells)
        pending += 1
        if pending == BATCH:
            yield _drain(buffer)
            pending = 0
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return data.encode("utf-8")


# --- XLSX -------------------------------------------------------------------------------------

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006"
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_STATIC_PARTS = {
    "[Content_Types].xml": (
        f'{_XML}<Types xmlns="{_PKG}/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/></Types>'
    ),
    "_rels/.rels": (
        f'{_XML}<Relationships xmlns="{_PKG}/relationships"><Relationship Id="rId1" '
        f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        f'{_XML}<workbook xmlns="{_NS}" xmlns:r="{_REL}"><sheets>'
        '<sheet name="Beneficiaries" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'{_XML}<Relationships xmlns="{_PKG}/relationships">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/></Relationships>'
    ),
    # Style 1: bold header; style 2: number format 49 ("@", text), so an edited cell stays text.
    "xl/styles.xml": (
        f'{_XML}<styleSheet xmlns="{_NS}">'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        '</cellStyleXfs><cellXfs count="3">'
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="49" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"'
        ' applyNumberFormat="1"/>'
        '<xf numFmtId="49" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
        '</cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
        "</cellStyles></styleSheet>"
    ),
}


class _Sink:
    """A write-only, unseekable file: ZipFile then writes a streamable archive into it."""

    def __init__(self):
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _xml_text(value: str) -> str:
    return xml_escape(_XML_ILLEGAL.sub("", value)).replace("\r", "&#13;")


def _xlsx_row(number: int, cells: list[str], style: int) -> str:
    return (
        f'<row r="{number}">'
        + "".join(
            f'<c r="{get_column_letter(col)}{number}" t="inlineStr" s="{style}"><is>'
            f'<t xml:space="preserve">{_xml_text(value)}</t></is></c>'
            for col, value in enumerate(cells, start=1)
        )
        + "</row>"
    )


def xlsx_chunks(export: Export) -> Iterator[bytes]:
    return xlsx_stream(export.headers, rows(export))


def xlsx_stream(headers: list[str], cells_of_rows: Iterable[list[str]]) -> Iterator[bytes]:
    """One sheet of inline-string cells, written into the response as the rows come."""
    sink = _Sink()
    archive = zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED)
    for name, body in _STATIC_PARTS.items():
        archive.writestr(name, body)
    yield sink.take()
    width = len(headers)
    with archive.open("xl/worksheets/sheet1.xml", mode="w") as sheet:
        sheet.write(
            (
                f'{_XML}<worksheet xmlns="{_NS}" xmlns:r="{_REL}">'
                '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2"'
                ' activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
                f'<cols><col min="1" max="{width}" width="20" customWidth="1"/></cols>'
                "<sheetData>" + _xlsx_row(1, [escape_cell(h) for h in headers], 1)
            ).encode()
        )
        lines: list[str] = []
        for number, cells in enumerate(cells_of_rows, start=2):
            lines.append(_xlsx_row(number, cells, 2))
            if len(lines) == BATCH:
                sheet.write("".join(lines).encode())
                lines.clear()
                yield sink.take()
        sheet.write(("".join(lines) + "</sheetData></worksheet>").encode())
    archive.close()
    yield sink.take()

"""The import template to download: every field's header and one example row (plus notes).

The headers are the fields' labels, which ``guess_mapping`` recognises, so a file made from the
template maps itself. The example person is obviously fake but valid for the default country NP.
"""

from __future__ import annotations

import csv
import io
from datetime import date

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from portal.beneficiaries.forms import LANGUAGES
from portal.imports.fields import FIELDS

# Rows the XLSX drop-downs cover; far more than one upload is expected to hold by hand.
_VALIDATED_ROWS = 10_000


def example_row(today: date | None = None) -> dict[str, object]:
    today = today or date.today()
    return {
        "name": "Example Person",
        "phone": "9841000001",
        "national_id": "EXAMPLE-0001",
        "date_of_birth": date(1990, 1, 31),
        "location": "Example Ward 1",
        "latitude": 27.7172,
        "longitude": 85.324,
        "gender": "female",
        "language": "ne",
        "consent": "yes",
        # A date in the future, as the field requires, however late the template is made.
        "retention_until": date(today.year + 3, 12, 31),
    }


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def template_csv(today: date | None = None) -> bytes:
    """UTF-8 with a BOM, so Excel opens non-Latin names typed into it correctly."""
    example = example_row(today)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([field.label for field in FIELDS])
    writer.writerow([_text(example[field.name]) for field in FIELDS])
    return out.getvalue().encode("utf-8-sig")


def template_xlsx(today: date | None = None) -> bytes:
    example = example_row(today)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Beneficiaries"
    sheet.append([field.label for field in FIELDS])
    sheet.append([example[field.name] for field in FIELDS])
    sheet.freeze_panes = "A2"
    for index, field in enumerate(FIELDS, start=1):
        letter = get_column_letter(index)
        header = sheet.cell(row=1, column=index)
        header.font = Font(bold=True)
        sheet.column_dimensions[letter].width = max(14, len(field.label) + 4)
        value = sheet.cell(row=2, column=index)
        if isinstance(example[field.name], date):
            value.number_format = "yyyy-mm-dd"
        elif field.name in ("phone", "national_id"):
            # Text, so Excel keeps leading zeros and + and never shows 9.84E+09.
            sheet.column_dimensions[letter].number_format = "@"
            value.number_format = "@"
    _drop_downs(sheet)
    _notes(workbook.create_sheet("Notes"))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _drop_downs(sheet) -> None:
    choices = {
        "gender": "female,male,other",
        "language": ",".join(code for code, _ in LANGUAGES),
        "consent": "yes,no",
    }
    for index, field in enumerate(FIELDS, start=1):
        if field.name not in choices:
            continue
        letter = get_column_letter(index)
        rule = DataValidation(
            type="list",
            formula1=f'"{choices[field.name]}"',
            allow_blank=True,
            showErrorMessage=True,
        )
        rule.add(f"{letter}2:{letter}{_VALIDATED_ROWS + 1}")
        sheet.add_data_validation(rule)


def _notes(sheet) -> None:
    sheet.append(["Column", "Required", "What to enter"])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for field in FIELDS:
        sheet.append([field.label, "Yes" if field.required else "No", field.help])
    sheet.append([])
    sheet.append(
        [
            "",
            "",
            "Fill the Beneficiaries sheet, one person a row, and replace the example row. "
            "Columns may be left out or reordered, and other columns are ignored.",
        ]
    )
    sheet.column_dimensions["A"].width = 18
    sheet.column_dimensions["B"].width = 10
    sheet.column_dimensions["C"].width = 90
    for row in sheet.iter_rows(min_row=2):
        row[2].alignment = Alignment(wrap_text=True, vertical="top")

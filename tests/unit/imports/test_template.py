from __future__ import annotations

import io
from datetime import date

from openpyxl import load_workbook

from portal.imports.fields import FIELDS, check_mapping, guess_mapping
from portal.imports.template import template_csv, template_xlsx
from portal.imports.validation import RowValidator, ValidRow

TODAY = date(2026, 11, 21)


def _import_example(tmp_path, name: str, data: bytes) -> tuple[list[str], list]:
    from portal.imports.parsing import open_table

    path = tmp_path / name
    path.write_bytes(data)
    with open_table(path, name) as table:
        headers = table.headers
        mapping = guess_mapping(headers)
        assert check_mapping(mapping, headers) == []
        assert sorted(mapping.values()) == sorted(f.name for f in FIELDS)  # maps itself
        validator = RowValidator(mapping, headers, "NP", today=TODAY)
        results = [validator.validate(number, cells) for number, cells in table.rows()]
    return headers, results


def _assert_example(result) -> None:
    assert isinstance(result, ValidRow), result
    assert result.row == 2 and result.name == "Example Person"
    assert result.phone == "+9779841000001" and result.national_id == "EXAMPLE0001"
    assert result.date_of_birth == "1990-01-31" and result.consent is True
    assert result.location == "Example Ward 1 (27.7172, 85.324)"
    assert result.retention_until == date(2029, 12, 31)


def test_the_csv_template_imports_its_own_example(index_key, tmp_path):
    data = template_csv(TODAY)
    assert data.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads it as UTF-8
    headers, results = _import_example(tmp_path, "template.csv", data)
    assert headers == [f.label for f in FIELDS]
    (result,) = results
    _assert_example(result)


def test_the_xlsx_template_imports_its_own_example_and_has_notes(index_key, tmp_path):
    data = template_xlsx(TODAY)
    headers, results = _import_example(tmp_path, "template.xlsx", data)
    assert headers == [f.label for f in FIELDS]
    (result,) = results
    _assert_example(result)

    workbook = load_workbook(io.BytesIO(data))
    assert workbook.sheetnames == ["Beneficiaries", "Notes"]
    sheet = workbook["Beneficiaries"]
    assert sheet["B2"].value == "9841000001" and sheet["B2"].number_format == "@"
    notes = [[cell.value for cell in row] for row in workbook["Notes"].iter_rows(max_row=12)]
    assert notes[0] == ["Column", "Required", "What to enter"]
    assert notes[1:] == [[f.label, "Yes" if f.required else "No", f.help] for f in FIELDS]
    lists = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
    assert lists["H2:H10001"] == '"female,male,other"'

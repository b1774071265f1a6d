"""The money trail for staff: a project's redemptions list (filters, paging, scope, personal data
by permission), its CSV/XLSX export (formula-safe, audited), a vendor statement as PDF (text
read back) and a beneficiary's money per project on their page."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import datetime, timedelta

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlalchemy import select

from portal.accounts.services import save_role
from portal.audit.models import AuditEntry
from portal.beneficiaries.exports import FORMULA_START, PLAIN_NUMBER
from portal.disbursements.models import Disbursement, DisbursementBatch, DisbursementItem
from portal.extensions import db
from portal.ledger import entitlements as ledger
from portal.ledger import redemption_list
from portal.projects import services as projects
from portal.redemptions.models import Redemption
from tests.support import chain

DAY = datetime(2026, 11, 10, 9, 30)


def _redemption(project, vendor, person, amount, status, created, settled=None):
    row = Redemption(
        project_id=project.id,
        vendor_id=vendor.id,
        beneficiary_id=person.id if person else None,
        amount=amount,
        method="card",
        status=status,
        code_expires_at=created + timedelta(minutes=5),
        created_at=created,
        settled_at=settled,
    )
    db.session.add(row)
    return row


@pytest.fixture
def world(app, make_project, make_user, make_beneficiary, make_vendor):
    """Two projects; A has two vendors, two people and redemptions over three weeks."""
    manager = make_user("programme manager")
    outsider = make_user("programme manager")
    a = make_project(name="Flood relief", status="active", members=[manager])
    b = make_project(name="Other project", status="active", members=[outsider])
    pc = chain.pretend_deployed(a, symbol="NPR", decimals=2)
    chain.pretend_deployed(b, symbol="USD", decimals=2)
    shop = make_vendor(project=a, name="=Shop HYPERLINK", status="approved")
    pharmacy = make_vendor(project=a, name="Pharmacy", status="approved")
    other_vendor = make_vendor(project=b, name="Far away shop", status="approved")
    sita = make_beneficiary(project=a, name="Sita Tamang", phone="9841000001")
    evil = make_beneficiary(project=a, name='=HYPERLINK("http://x/")', phone="9841000002")
    far = make_beneficiary(project=b, name="Far Person", phone="9841000003")
    for person in (sita, evil):
        ledger.credit(a.id, [(person.id, "0x" + "ab" * 20, 100_000)])
    ledger.reserve(a.id, sita.id, 1_500 + 2_500 + 700)
    rows = {
        "before": _redemption(a, shop, sita, 1_500, "settled", DAY, DAY + timedelta(minutes=1)),
        "in": _redemption(
            a, shop, sita, 2_500, "settled", DAY + timedelta(days=7), DAY + timedelta(days=7)
        ),
        "pharmacy": _redemption(
            a, pharmacy, evil, 1_250, "settled", DAY + timedelta(days=8), DAY + timedelta(days=8)
        ),
        "pending": _redemption(a, shop, sita, 700, "submitted", DAY + timedelta(days=9)),
        "failed": _redemption(a, shop, evil, 999, "failed", DAY + timedelta(days=10)),
        "decoy": _redemption(a, shop, None, 50, "cancelled", DAY + timedelta(days=11)),
        "far": _redemption(b, other_vendor, far, 4_242, "settled", DAY, DAY),
    }
    ledger.reserve(a.id, evil.id, 1_250)
    db.session.commit()
    return {
        "a": a,
        "b": b,
        "pc": pc,
        "manager": manager,
        "outsider": outsider,
        "shop": shop,
        "pharmacy": pharmacy,
        "other_vendor": other_vendor,
        "sita": sita,
        "evil": evil,
        "far": far,
        "rows": rows,
    }


def _data(entry) -> dict:
    return json.loads(entry.data)


def _ids(html: str) -> set[int]:
    return {int(m) for m in re.findall(r'<td class="mono hide-sm" data-payment>(\d+)</td>', html)}


def test_the_list_shows_the_projects_redemptions_newest_first(client, login, world):
    login(client, world["manager"])
    reply = client.get(f"/projects/{world['a'].id}/redemptions")
    assert reply.status_code == 200
    html = reply.get_data(as_text=True)
    rows = world["rows"]
    shown = [int(m) for m in re.findall(r'<td class="mono hide-sm" data-payment>(\d+)</td>', html)]
    expected = ["decoy", "failed", "pending", "pharmacy", "in", "before"]
    assert shown == [rows[k].id for k in expected]
    assert "NPR\u00a025.00" in html and "Sita Tamang" in html
    assert rows["far"].id not in shown and "Far away shop" not in html


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"status": "settled"}, {"in", "pharmacy", "before"}),
        ({"vendor": "pharmacy"}, {"pharmacy"}),
        ({"beneficiary": "sita"}, {"before", "in", "pending"}),
        ({"from": "2026-11-17", "to": "2026-11-18"}, {"in", "pharmacy"}),
        ({"from": "2026-11-19"}, {"pending", "failed", "decoy"}),
        ({"to": "2026-11-10"}, {"before"}),
        ({"vendor": "shop", "status": "settled", "from": "2026-11-11"}, {"in"}),
        ({"beneficiary": "NOBODY"}, set()),
    ],
)
def test_filters(client, login, world, args, expected):
    login(client, world["manager"])
    values = dict(args)
    if values.get("vendor") in ("shop", "pharmacy"):
        values["vendor"] = world[values["vendor"]].id
    if values.get("beneficiary") == "sita":
        values["beneficiary"] = world["sita"].ref
    reply = client.get(f"/projects/{world['a'].id}/redemptions", query_string=values)
    assert reply.status_code == 200
    assert _ids(reply.get_data(as_text=True)) == {world["rows"][k].id for k in expected}


@pytest.mark.parametrize(
    "args",
    [{"from": "2026-13-01"}, {"status": "spent"}, {"vendor": "x"}, {"beneficiary": "x" * 13}],
)
def test_bad_filters_are_refused_with_400(client, login, world, args):
    login(client, world["manager"])
    assert client.get(f"/projects/{world['a'].id}/redemptions", query_string=args).status_code == (
        400
    )


def test_paging_by_seek_walks_every_row_once(app, world, monkeypatch):
    monkeypatch.setattr(redemption_list, "PER_PAGE", 2)
    filters = redemption_list.Filters(project_id=world["a"].id)
    seen, page = [], redemption_list.page(filters)
    pages = [page]
    while page.next:
        page = redemption_list.page(filters, after=page.next["after"])
        pages.append(page)
    seen = [r.id for p in pages for r, _ in p.rows]
    assert len(seen) == 6 == len(set(seen))
    # Back from the last page gives the one before it.
    back = redemption_list.page(filters, before=pages[-1].previous["before"])
    assert [r.id for r, _ in back.rows] == [r.id for r, _ in pages[-2].rows]
    assert redemption_list.page(filters, after="not-a-cursor").number == 1


def test_a_member_of_another_project_sees_nothing_of_it(client, login, world):
    login(client, world["outsider"])
    a = world["a"]
    assert client.get(f"/projects/{a.id}/redemptions").status_code == 404
    assert client.post(f"/projects/{a.id}/redemptions/export.csv").status_code == 404
    assert client.get(f"/vendors/{world['shop'].id}/statement").status_code == 404
    page = client.get(f"/beneficiaries/{world['far'].id}").get_data(as_text=True)
    assert "Flood relief" not in page
    # Their own project shows only their rows.
    own = client.get(f"/projects/{world['b'].id}/redemptions").get_data(as_text=True)
    assert _ids(own) == {world["rows"]["far"].id}


def test_without_redemption_read_the_pages_are_refused(client, login, make_user, world):
    viewer = make_user("viewer")
    projects.set_members(world["a"], {world["manager"].id, viewer.id})
    login(client, viewer)
    assert client.get(f"/projects/{world['a'].id}/redemptions").status_code == 403
    assert client.get(f"/vendors/{world['shop'].id}/statement").status_code == 403
    assert client.get("/redemptions").status_code == 403


def test_names_are_shown_and_audited_only_with_personal_data_permission(
    app, client, login, make_user, world
):
    role = save_role(None, "auditor", "", {"project.read", "redemption.read", "vendor.read"})
    auditor = make_user("viewer")
    auditor.role = role
    projects.set_members(world["a"], {world["manager"].id, auditor.id})
    login(client, auditor)
    html = client.get(f"/projects/{world['a'].id}/redemptions").get_data(as_text=True)
    assert world["sita"].ref in html and "Sita Tamang" not in html
    assert not db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "beneficiary.pii_read")
    ).all()
    other = app.test_client()
    login(other, world["manager"])
    other.get(f"/projects/{world['a'].id}/redemptions")
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "beneficiary.pii_read")
    ).one()
    assert _data(entry)["via"] == "redemptions"
    assert set(_data(entry)["ids"]) == {world["sita"].id, world["evil"].id}


def _csv(reply) -> list[dict]:
    text = reply.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_csv_export_of_the_filtered_set_is_formula_safe_and_audited(client, login, world):
    login(client, world["manager"])
    a = world["a"]
    reply = client.post(
        f"/projects/{a.id}/redemptions/export.csv",
        data={"status": "settled", "csrf_token": _token(client, a)},
    )
    assert reply.status_code == 200 and reply.mimetype == "text/csv"
    rows = _csv(reply)
    rows_by_id = {int(r["Payment"]): r for r in rows}
    assert set(rows_by_id) == {world["rows"][k].id for k in ("before", "in", "pharmacy")}
    first = rows_by_id[world["rows"]["in"].id]
    assert first["Vendor"] == "'=Shop HYPERLINK"
    assert first["Amount"] == "25.00" and first["Currency"] == "NPR"
    assert first["Name"] == "Sita Tamang" and first["Phone"] == "+9779841000001"
    evil = rows_by_id[world["rows"]["pharmacy"].id]
    assert evil["Name"].startswith("'=")
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(FORMULA_START) or PLAIN_NUMBER.fullmatch(cell), cell
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "redemptions.exported")
    ).one()
    assert entry.project_id == a.id
    assert _data(entry)["rows"] == 3 and _data(entry)["pii"] is True
    assert _data(entry)["filters"]["status"] == "settled"


def test_xlsx_export_without_personal_data_holds_strings_only(client, login, make_user, world):
    role = save_role(None, "auditor", "", {"project.read", "redemption.read"})
    auditor = make_user("viewer")
    auditor.role = role
    projects.set_members(world["a"], {world["manager"].id, auditor.id})
    login(client, auditor)
    a = world["a"]
    reply = client.post(
        f"/projects/{a.id}/redemptions/export.xlsx", data={"csrf_token": _token(client, a)}
    )
    assert reply.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(reply.get_data()))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    assert "Name" not in header and "Phone" not in header
    assert sheet.max_row == 1 + 6
    cells = [c for row in sheet.iter_rows() for c in row if c.value is not None]
    assert all(c.data_type == "s" for c in cells)
    raw = zipfile.ZipFile(io.BytesIO(reply.get_data())).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in raw and b"Sita" not in raw


def _token(client, project) -> str:
    html = client.get(f"/projects/{project.id}/redemptions").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_export_without_csrf_changes_nothing(client, login, world, app):
    app.config["WTF_CSRF_ENABLED"] = True
    login(client, world["manager"])
    reply = client.post(f"/projects/{world['a'].id}/redemptions/export.csv")
    assert reply.status_code in (302, 400)
    assert not db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "redemptions.exported")
    ).all()


def _pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_vendor_statement_pdf_has_balances_lines_and_totals(client, login, world):
    login(client, world["manager"])
    shop, a = world["shop"], world["a"]
    form = client.get(f"/vendors/{shop.id}/statement")
    assert form.status_code == 200 and "Download the PDF" in form.get_data(as_text=True)
    reply = client.get(
        f"/vendors/{shop.id}/statement",
        query_string={"project": a.id, "from": "2026-11-11", "to": "2026-11-30"},
    )
    assert reply.status_code == 200 and reply.mimetype == "application/pdf"
    text = _pdf_text(reply.get_data())
    assert "Vendor statement" in text and "=Shop HYPERLINK" in text and "Flood relief" in text
    assert "2026-11-11 to 2026-11-30" in text
    assert re.search(r"Opening balance\s*NPR\s15\.00", text)
    assert f"Payment {world['rows']['in'].id}" in text
    assert f"Payment {world['rows']['before'].id}" not in text  # settled before the period
    assert f"Payment {world['rows']['pharmacy'].id}" not in text  # another vendor
    assert world["sita"].ref in text and "Sita Tamang" not in text  # masked
    assert re.search(r"Settled in the period \(1\)\s*NPR\s25\.00", text)
    assert re.search(r"Closing balance\s*NPR\s40\.00", text)
    assert re.search(r"1 payment, NPR\s7\.00", text)  # pending, in neither balance
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "vendor.statement")
    ).one()
    assert _data(entry)["rows"] == 1 and entry.project_id == a.id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"from": "2026-11-30", "to": "2026-11-01"}, "The last day is before the first day."),
        ({"from": "2024-01-01", "to": "2026-11-01"}, "at most 366 days"),
        ({"from": "", "to": "2026-11-01"}, "Choose the first day."),
    ],
)
def test_statement_form_refuses_a_bad_period_with_field_errors(client, login, world, args, message):
    login(client, world["manager"])
    reply = client.get(
        f"/vendors/{world['shop'].id}/statement", query_string={"project": world["a"].id, **args}
    )
    assert reply.status_code == 422
    assert message in reply.get_data(as_text=True)


def test_statement_of_a_project_the_vendor_does_not_serve_is_refused(client, login, world):
    login(client, world["manager"])
    reply = client.get(
        f"/vendors/{world['shop'].id}/statement",
        query_string={"project": world["b"].id, "from": "2026-11-01", "to": "2026-11-30"},
    )
    assert reply.status_code == 422
    assert "Choose one of this vendor" in reply.get_data(as_text=True)


def test_beneficiary_page_shows_money_and_history(client, login, world):
    a, sita = world["a"], world["sita"]
    disbursement = Disbursement(
        project_id=a.id,
        title="November round",
        amount_each=100_000,
        batch_size=10,
        status="completed",
    )
    db.session.add(disbursement)
    db.session.flush()
    batch = DisbursementBatch(
        disbursement_id=disbursement.id,
        number=1,
        batch_key="0x" + "01" * 32,
        size=1,
        status="confirmed",
    )
    db.session.add(batch)
    db.session.flush()
    db.session.add(
        DisbursementItem(
            disbursement_id=disbursement.id,
            batch_id=batch.id,
            beneficiary_id=sita.id,
            address="0x" + "ab" * 20,
            amount=100_000,
        )
    )
    db.session.commit()
    login(client, world["manager"])
    html = client.get(f"/beneficiaries/{sita.id}").get_data(as_text=True)
    section = html[html.index("<h2>Money</h2>") :]
    facts = dict(re.findall(r"<dt>(\w+)</dt><dd>(?:<strong>)?([^<]+)", section))
    assert facts == {
        "Entitled": "NPR\u00a01,000.00",
        "Spent": "NPR\u00a040.00",
        "Pending": "NPR\u00a07.00",
        "Remaining": "NPR\u00a0953.00",
    }
    assert "Allocated by “November round”" in section
    assert f"Paid at =Shop HYPERLINK (payment {world['rows']['in'].id})" in section
    assert "Other project" not in section


def test_beneficiary_without_money_says_so(client, login, world, make_beneficiary):
    person = make_beneficiary(project=world["a"])
    login(client, world["manager"])
    assert "Nothing allocated or spent yet." in client.get(f"/beneficiaries/{person.id}").get_data(
        as_text=True
    )


def test_nav_entry_leads_to_a_visible_projects_list(client, login, world):
    login(client, world["outsider"])
    reply = client.get("/redemptions")
    assert reply.status_code == 302
    assert reply.headers["Location"].endswith(f"/projects/{world['b'].id}/redemptions")


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_streams_after_the_view_as_a_real_server_runs_it(client, login, world, fmt):
    """From another thread Flask pushes the request's own app context and tears it down before
    the body is read: the rows must be read inside the streamed request, not from the view."""
    import threading

    login(client, world["manager"])
    url = f"/projects/{world['a'].id}/redemptions/export.{fmt}"
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(reply=client.post(url, data={}, buffered=True))
    )
    thread.start()
    thread.join(30)
    reply = result["reply"]
    assert reply.status_code == 200
    if fmt == "csv":
        assert len(_csv(reply)) == 6
    else:
        assert openpyxl.load_workbook(io.BytesIO(reply.get_data())).active.max_row == 7


FILTER_SHAPES = st.fixed_dictionaries(
    {
        "vendor": st.sampled_from([None, "shop", "pharmacy", "other_vendor"]),
        "person": st.sampled_from([None, "sita", "evil", "far"]),
        "status": st.sampled_from(["", "settled", "submitted", "failed", "cancelled", "expired"]),
        "start": st.one_of(st.none(), st.integers(-2, 14)),
        "days": st.one_of(st.none(), st.integers(0, 14)),
    }
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(shape=FILTER_SHAPES)
def test_any_filter_combination_gives_what_filtering_by_hand_gives(world, shape):
    from datetime import date

    a = world["a"]
    start = None if shape["start"] is None else date(2026, 11, 10) + timedelta(days=shape["start"])
    end = None if start is None or shape["days"] is None else start + timedelta(days=shape["days"])
    filters = redemption_list.Filters(
        project_id=a.id,
        vendor_id=world[shape["vendor"]].id if shape["vendor"] else None,
        beneficiary=world[shape["person"]].ref if shape["person"] else "",
        start=start,
        end=end,
        status=shape["status"],
    )
    expected = [
        r
        for r in sorted(world["rows"].values(), key=lambda r: (r.created_at, r.id), reverse=True)
        if r.project_id == a.id
        and (filters.vendor_id is None or r.vendor_id == filters.vendor_id)
        and (not shape["person"] or r.beneficiary_id == world[shape["person"]].id)
        and (not filters.status or r.status == filters.status)
        and (start is None or r.created_at.date() >= start)
        and (end is None or r.created_at.date() <= end)
    ]
    got = [r.id for r, _ in redemption_list.page(filters).rows]
    assert got == [r.id for r in expected]
    assert redemption_list.count(filters) == len(expected)


def test_nav_entry_without_any_project_says_so(client, login, make_user, world):
    lonely = make_user("programme manager")  # a member of no project
    login(client, lonely)
    reply = client.get("/redemptions")
    assert reply.status_code == 200
    assert "You are not a member of any project yet." in reply.get_data(as_text=True)

"""The payouts and reconciliation pages: methods registered by staff and by the vendor, a bank
batch from build to file to sent, a statement uploaded and matched, exceptions resolved,
overrides only with ``payout.override`` and a reason, and project scope."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select, text

from portal.accounts.services import save_role
from portal.audit.models import AuditEntry
from portal.comms.models import OutboxMessage
from portal.extensions import db
from portal.payouts import methods, services
from portal.payouts.models import FAILED, PAID, PENDING, SENT, Payout, PayoutMethod
from portal.reconciliation.models import Statement, StatementLine
from tests.unit.test_vendor_portal import sign_in


def _bank_payouts(world, *amounts):
    made = [
        services.request_payout(world.project.id, world.vendor.id, a, method_id=world.bank.id)
        for a in amounts
    ]
    db.session.commit()
    return made


def _statement(rows, header=("Reference", "Amount", "Currency", "Value date")) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def _upload(client, project, body: bytes, name="statement.csv"):
    return client.post(
        "/reconciliation/statements",
        data={"project_id": str(project.id), "file": (io.BytesIO(body), name)},
        content_type="multipart/form-data",
    )


@pytest.fixture
def staff(client, login, payout_world):
    login(client, payout_world.user)
    return client


# --- payout methods ---------------------------------------------------------------------------


def test_staff_add_a_method_masked_and_encrypted(staff, payout_world):
    url = f"/payouts/vendors/{payout_world.vendor.id}/methods"
    response = staff.post(
        url,
        data={
            "kind": "bank",
            "account_name": "Shop Two",
            "account_number": "9876543210",
            "bank_code": "DFCUUGKA",
            "make_default": "y",
        },
    )
    assert response.status_code == 302
    page = staff.get(url).get_data(as_text=True)
    assert "•••• 3210" in page and "9876543210" not in page
    stored = db.session.execute(
        text("SELECT account_number FROM payout_methods ORDER BY id DESC")
    ).scalar()
    assert stored.startswith("v1:") and "9876543210" not in stored
    defaults = db.session.scalars(
        select(PayoutMethod.id).where(PayoutMethod.is_default.is_(True), PayoutMethod.active)
    ).all()
    assert len(defaults) == 1


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"kind": "momo", "account_name": "A", "account_number": "12"}, "phone number"),
        (
            {"kind": "bank", "account_name": "A", "account_number": "12", "bank_code": "X1"},
            "4 to 34",
        ),
        (
            {"kind": "bank", "account_name": "A", "account_number": "123456", "bank_code": ""},
            "2 to 20",
        ),
        ({"kind": "bank", "account_name": "A\x1b", "account_number": "123456"}, "control"),
    ],
)
def test_bad_methods_are_field_errors(staff, payout_world, data, field_error):
    before = db.session.scalar(select(func.count()).select_from(PayoutMethod))
    response = staff.post(f"/payouts/vendors/{payout_world.vendor.id}/methods", data=data)
    assert response.status_code == 400
    assert field_error in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(PayoutMethod)) == before


def test_the_vendor_changes_methods_on_the_phone_and_is_told(client, payout_world, make_vendor):
    sign_in(client, payout_world.vendor)
    response = client.post(
        "/vendor/payout-methods",
        data={"kind": "momo", "account_name": "Asha", "account_number": "+256 772 999 888"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    method = db.session.scalar(select(PayoutMethod).order_by(PayoutMethod.id.desc()))
    assert method.added_by_vendor and method.account_number == "+256772999888"
    page = client.get("/vendor/payout-methods").get_data(as_text=True)
    assert "•••• 9888" in page and "772999888" not in page
    assert client.post(f"/vendor/payout-methods/{method.id}/default").status_code == 302
    sms = db.session.scalars(
        select(OutboxMessage.body).where(OutboxMessage.purpose == "payout-method")
    ).all()
    assert len(sms) == 2 and all("9888" in body for body in sms)
    audit = db.session.scalars(
        select(AuditEntry.summary).where(AuditEntry.action.like("payout_method.%"))
    ).all()
    assert any("by the vendor" in s for s in audit)
    # Another vendor's method is not theirs to touch.
    other = make_vendor(project=payout_world.project, status="approved")
    theirs = methods.add(
        other,
        {"kind": "bank", "account_name": "B", "account_number": "55556666", "bank_code": "AB"},
    )
    db.session.commit()
    assert client.post(f"/vendor/payout-methods/{theirs.id}/remove").status_code == 404
    db.session.expire_all()
    assert db.session.get(PayoutMethod, theirs.id).active


# --- bank batches -----------------------------------------------------------------------------


def test_a_bank_batch_from_build_to_sent(staff, payout_world):
    first, second = _bank_payouts(payout_world, 150_050, 2_000)
    assert (
        staff.post("/payouts/batches", data={"project_id": payout_world.project.id}).status_code
        == 302
    )
    batch_id = db.session.get(Payout, first.id).batch_id
    assert batch_id and db.session.get(Payout, second.id).batch_id == batch_id
    # Nothing left to batch: a second build is refused.
    assert (
        staff.post("/payouts/batches", data={"project_id": payout_world.project.id}).status_code
        == 409
    )

    response = staff.get(f"/payouts/batches/{batch_id}/file.csv")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[1][2:7] == ["Corner Shop Ltd", "001234567890", "STANUGKA", "1500.50", "UGX"]
    xlsx = staff.get(f"/payouts/batches/{batch_id}/file.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"

    assert staff.post(f"/payouts/batches/{batch_id}/sent").status_code == 302
    assert staff.post(f"/payouts/batches/{batch_id}/sent").status_code == 409  # once
    db.session.expire_all()
    assert {db.session.get(Payout, p.id).status for p in (first, second)} == {SENT}
    assert "sent" in staff.get(f"/payouts/batches/{batch_id}").get_data(as_text=True)
    for path in (
        "/payouts/",
        f"/payouts/{first.id}",
        "/payouts/batches",
        f"/payouts/?status=sent&project={payout_world.project.id}",
    ):
        page = staff.get(path)
        assert page.status_code == 200, path
        assert "UGX\u00a01,500.50" in page.get_data(as_text=True) or path == "/payouts/batches"


# --- statements -------------------------------------------------------------------------------


def _sent_batch(staff, world, *amounts):
    made = _bank_payouts(world, *amounts)
    staff.post("/payouts/batches", data={"project_id": world.project.id})
    batch_id = db.session.get(Payout, made[0].id).batch_id
    staff.post(f"/payouts/batches/{batch_id}/sent")
    db.session.expire_all()
    return [db.session.get(Payout, p.id) for p in made]


def test_a_statement_matches_and_lists_the_exceptions(staff, payout_world):
    a, b, c = _sent_batch(staff, payout_world, 1000, 2000, 3000)
    body = _statement(
        [
            (a.reference.upper(), "10.00", "UGX", "2026-12-03"),  # matched (case does not matter)
            (a.reference, "10.00", "", ""),  # duplicate
            (b.reference, "20.01", "UGX", ""),  # amount differs by one unit
            ("11111111-2222-4333-8444-555555555555", "5.00", "", ""),  # unexpected
        ]
    )
    response = _upload(staff, payout_world.project, body)
    assert response.status_code == 302
    db.session.expire_all()
    assert (a.status, a.books) == (PAID, "matched")
    assert (db.session.get(Payout, b.id).status, db.session.get(Payout, b.id).books) == (SENT, None)
    states = db.session.scalars(
        select(StatementLine.state).order_by(StatementLine.row_number)
    ).all()
    assert states == ["matched", "duplicate", "amount_differs", "unexpected"]
    page = staff.get(f"/reconciliation/?project={payout_world.project.id}").get_data(as_text=True)
    assert "To resolve (3)" in page and "Missing: sent, no statement line yet (2)" in page
    assert c.reference in page

    # The bank's line for b carried a typo in the amount: matching it by hand needs override.
    line = db.session.scalar(select(StatementLine).where(StatementLine.state == "amount_differs"))
    role = save_role(None, "payout clerk", "", {"payout.read", "payout.manage", "project.read"})
    from portal.accounts.services import create_user

    clerk = create_user("clerk@example.org", "Clerk", "correct horse battery staple", role)
    db.session.commit()
    clerk_client = staff.application.test_client()
    clerk_client.post(
        "/login", data={"email": clerk.email, "password": "correct horse battery staple"}
    )
    from portal.projects import services as projects

    projects.set_members(payout_world.project, {payout_world.user.id, clerk.id})
    db.session.commit()
    refused = clerk_client.post(
        f"/reconciliation/lines/{line.id}/match",
        data={"reference": b.reference, "reason": "bank typo"},
    )
    assert refused.status_code == 422 and "override" in refused.get_data(as_text=True)
    ok = staff.post(
        f"/reconciliation/lines/{line.id}/match",
        data={"reference": b.reference, "reason": "bank typo"},
    )
    assert ok.status_code == 302
    db.session.expire_all()
    assert db.session.get(Payout, b.id).books == "matched"

    unexpected = db.session.scalar(select(StatementLine).where(StatementLine.state == "unexpected"))
    assert (
        staff.post(
            f"/reconciliation/lines/{unexpected.id}/set-aside", data={"reason": "x"}
        ).status_code
        == 422
    )
    assert (
        staff.post(
            f"/reconciliation/lines/{unexpected.id}/set-aside", data={"reason": "another programme"}
        ).status_code
        == 302
    )
    assert (
        staff.post(
            f"/reconciliation/lines/{unexpected.id}/set-aside", data={"reason": "again, twice"}
        ).status_code
        == 409
    )


def test_a_bad_statement_is_refused_whole_with_a_row_report(staff, payout_world):
    (a,) = _sent_batch(staff, payout_world, 1000)
    body = _statement(
        [
            (a.reference, "10.00", "UGX", ""),
            (a.reference, "10.001", "UGX", ""),  # too many fraction digits
            ("", "1", "", ""),  # no reference
            (a.reference, "10", "EUR", ""),  # another currency
            (a.reference, "1e3", "", ""),
            (a.reference, "10", "", "03/12/2026"),
        ]
    )
    response = _upload(staff, payout_world.project, body)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for row in ("<td>3</td>", "<td>4</td>", "<td>5</td>", "<td>6</td>", "<td>7</td>"):
        assert row in page
    assert db.session.scalar(select(func.count()).select_from(Statement)) == 0
    db.session.expire_all()
    assert db.session.get(Payout, a.id).books is None

    no_amount = _upload(staff, payout_world.project, b"Reference,Value\nx,1\n")
    assert no_amount.status_code == 422 and "amount column" in no_amount.get_data(as_text=True)
    wrong_type = _upload(staff, payout_world.project, b"\x89PNG....", name="x.png")
    assert wrong_type.status_code == 422


def test_an_xlsx_statement_with_number_cells(staff, payout_world):
    from openpyxl import Workbook

    (a,) = _sent_batch(staff, payout_world, 150_050)
    book = Workbook()
    book.active.append(["External ID", "Amount", "Status"])
    book.active.append([a.reference, 1500.5, "SUCCESSFUL"])
    out = io.BytesIO()
    book.save(out)
    assert _upload(staff, payout_world.project, out.getvalue(), "report.xlsx").status_code == 302
    db.session.expire_all()
    assert db.session.get(Payout, a.id).books == "matched"


# --- overrides --------------------------------------------------------------------------------


def test_override_needs_the_permission_and_a_reason(staff, payout_world, make_user, login, app):
    a, b = _bank_payouts(payout_world, 1000, 2000)
    finance = make_user("finance")
    from portal.projects import services as projects

    projects.set_members(payout_world.project, {payout_world.user.id, finance.id})
    db.session.commit()
    other = app.test_client()
    login(other, finance)
    assert (
        other.post(
            f"/payouts/{a.id}/override", data={"outcome": "paid", "reason": "cash"}
        ).status_code
        == 403
    )

    assert (
        staff.post(f"/payouts/{a.id}/override", data={"outcome": "paid", "reason": ""}).status_code
        == 400
    )
    db.session.expire_all()
    assert db.session.get(Payout, a.id).status == PENDING
    assert (
        staff.post(
            f"/payouts/{a.id}/override",
            data={"outcome": "paid", "reason": "paid in cash at the office"},
        ).status_code
        == 302
    )
    assert (
        staff.post(
            f"/payouts/{b.id}/override", data={"outcome": "failed", "reason": "account closed"}
        ).status_code
        == 302
    )
    db.session.expire_all()
    assert (db.session.get(Payout, a.id).status, db.session.get(Payout, a.id).books) == (
        PAID,
        "override",
    )
    assert (db.session.get(Payout, b.id).status, db.session.get(Payout, b.id).failure_reason) == (
        FAILED,
        "account closed",
    )
    entries = db.session.scalars(
        select(AuditEntry.summary).where(AuditEntry.action == "payout.override")
    ).all()
    assert len(entries) == 2 and any("paid in cash" in e for e in entries)


# --- scope and the service API ---------------------------------------------------------------


def test_a_member_of_another_project_sees_none_of_it(
    payout_world, make_user, make_project, login, app
):
    (a,) = _bank_payouts(payout_world, 1000)
    role = save_role(
        None, "payouts elsewhere", "", {"payout.read", "payout.manage", "project.read"}
    )
    outsider = make_user("viewer")
    outsider.role = role
    make_project(name="Elsewhere", creator=outsider)
    db.session.commit()
    client = app.test_client()
    login(client, outsider)
    listed = client.get("/payouts/")
    assert listed.status_code == 200 and a.reference not in listed.get_data(as_text=True)
    assert client.get(f"/payouts/{a.id}").status_code == 404
    assert client.get(f"/reconciliation/?project={payout_world.project.id}").status_code == 404


def test_one_payout_per_source(payout_world):
    first = services.request_payout(
        payout_world.project.id, payout_world.vendor.id, 500, source_type="settlement", source_id=7
    )
    again = services.request_payout(
        payout_world.project.id, payout_world.vendor.id, 500, source_type="settlement", source_id=7
    )
    assert first.id == again.id
    assert first.method_id == payout_world.bank.id  # the default: the first method added


def test_the_callers_reference_is_kept_and_checked(payout_world):
    import uuid

    from portal.errors import DomainError

    mine = str(uuid.uuid4())
    payout = services.request_payout(
        payout_world.project.id, payout_world.vendor.id, 500, reference=mine.upper()
    )
    assert payout.reference == mine
    with pytest.raises(DomainError):
        services.request_payout(payout_world.project.id, payout_world.vendor.id, 5, reference="x")
    with pytest.raises(DomainError):  # zero is not an amount to pay
        services.request_payout(payout_world.project.id, payout_world.vendor.id, 0)


def test_the_chain_side_joins_by_the_settlement_reference(staff, payout_world):
    """A payout made for a settlement shows the settlement's chain transaction beside it."""
    from portal.chain.models import ChainSettlement, ChainSigner, ChainTx
    from portal.reconciliation.chainside import chain_side
    from portal.settlements.models import Settlement

    signer = ChainSigner(name="operator", address="0x" + "ab" * 20, private_key="0x" + "01" * 32)
    db.session.add(signer)
    db.session.flush()
    tx = ChainTx(
        signer_id=signer.id,
        project_id=payout_world.project.id,
        chain_id=1337,
        purpose="settle",
        ref_type="chain_settlement",
        ref_id=1,
        gas_limit=100_000,
        status="confirmed",
    )
    db.session.add(tx)
    db.session.flush()
    settled = Settlement(
        project_id=payout_world.project.id,
        vendor_id=payout_world.vendor.id,
        amount=900,
        status="payout_sent",
        burned=True,
        chain_key="settlement-41",
    )
    db.session.add(settled)
    db.session.add(
        ChainSettlement(
            project_id=payout_world.project.id,
            key="settlement-41",
            vendor_id=payout_world.vendor.id,
            amount=900,
            status="settled",
            tx_id=tx.id,
        )
    )
    db.session.flush()
    for_settlement = services.request_payout(
        payout_world.project.id,
        payout_world.vendor.id,
        900,
        source_type="settlement",
        source_id=settled.id,
    )
    manual = services.request_payout(payout_world.project.id, payout_world.vendor.id, 800)
    db.session.commit()
    assert chain_side([for_settlement, manual]) == {for_settlement.id: tx}
    page = staff.get("/payouts/").get_data(as_text=True)
    row = page.split(f'data-payout-id="{for_settlement.id}"')[1].split("</tr>")[0]
    assert "confirmed" in row


def test_bank_lines_carry_a_short_reference_that_statements_match(staff, payout_world):
    from portal.payouts import references

    a, b, c = _sent_batch(staff, payout_world, 1000, 2000, 3000)
    assert len({a.line_reference, b.line_reference, c.line_reference}) == 3
    batch_id = a.batch_id
    rows = list(
        csv.reader(
            io.StringIO(staff.get(f"/payouts/batches/{batch_id}/file.csv").get_data(as_text=True))
        )
    )
    assert rows[0][1] == "line_reference"
    assert {r[1] for r in rows[1:]} == {a.line_reference, b.line_reference, c.line_reference}
    assert all(len(r[1]) <= 16 and r[1].isalnum() for r in rows[1:])
    # The bank echoes them as people typed them: lower case, dashes, O for 0; the UUID works too.
    typed = a.line_reference.lower()
    typed = f"{typed[:5]}-{typed[5:]}"
    slipped = b.line_reference[:2] + b.line_reference[2:].replace("0", "O")
    # One wrong character: the check character refuses it rather than match c.
    wrong = (
        c.line_reference[:-2]
        + next(x for x in references.ALPHABET if x != c.line_reference[-2])
        + c.line_reference[-1]
    )
    body = _statement(
        [
            (typed, "10.00", "UGX", ""),
            (slipped, "20.00", "UGX", ""),
            (wrong, "30.00", "UGX", ""),
        ]
    )
    assert _upload(staff, payout_world.project, body).status_code == 302
    db.session.expire_all()
    states = db.session.scalars(
        select(StatementLine.state).order_by(StatementLine.row_number)
    ).all()
    assert states == ["matched", "matched", "unexpected"]
    assert db.session.get(Payout, c.id).books is None
    # Matching by hand takes the short reference as well.
    line = db.session.scalar(select(StatementLine).where(StatementLine.state == "unexpected"))
    answer = staff.post(
        f"/reconciliation/lines/{line.id}/match",
        data={"reference": c.line_reference.lower(), "reason": "bank clerk typo"},
    )
    assert answer.status_code == 302
    db.session.expire_all()
    assert db.session.get(Payout, c.id).books == "matched"
    assert c.line_reference in staff.get(f"/payouts/{c.id}").get_data(as_text=True)

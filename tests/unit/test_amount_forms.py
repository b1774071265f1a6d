"""Every form that takes an amount reads it through ``portal.money``: a bad amount is a field
error and nothing is written (no funding, no draft, no redemption, no job, no SMS)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import func, select

from portal.approvals.models import ApprovalRequest
from portal.beneficiaries import groups
from portal.chain.addresses import pseudonym
from portal.chain.models import Funding, ProjectChain
from portal.comms.models import OutboxMessage
from portal.disbursements.models import Disbursement, DisbursementItem, Entitlement
from portal.extensions import db
from portal.jobs.models import Job
from portal.money import amounts
from portal.redemptions.models import Redemption
from tests.support import chain
from tests.support.ci import ci_enabled

# The spellings of the issue, and their neighbours.
REFUSED = [
    "0",
    "0.00",
    "१,५",
    "1,5",
    "12,50",
    "1e-1000000000",
    "1e999999",
    "1E3",
    "-5",
    "NaN",
    "Infinity",
    "1,,000",
    ",100",
    "1.001",
    "9" * 200,
    "99999999999999999999",
    "",
]
hostile = settings(
    derandomize=True,
    max_examples=60 if ci_enabled() else 15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NEAR_NUMBERS = st.text(alphabet=st.sampled_from("0123456789०१२३,.eE-+ "), max_size=20)


def sign_in(client, vendor) -> None:
    assert client.post("/vendor/sign-in", data={"phone": vendor.phone}).status_code == 302
    body = db.session.scalar(select(OutboxMessage.body).order_by(OutboxMessage.id.desc()))
    code = re.search(r"\b(\d{6})\b", body).group(1)
    assert client.post("/vendor/sign-in/code", data={"code": code}).status_code == 302


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def written() -> dict:
    return {
        model.__name__: count(model)
        for model in (
            ApprovalRequest,
            Funding,
            Disbursement,
            DisbursementItem,
            Redemption,
            Job,
            OutboxMessage,
        )
    }


def message_for(text: str) -> str:
    try:
        amounts.parse(text, 2)
    except amounts.AmountError as exc:
        return str(escape(exc.message))
    raise AssertionError(f"{text!r} was expected to be refused")


def _chain(project) -> None:
    chain.pretend_deployed(project)


@pytest.fixture
def staff(app, client, login, make_user, make_project, make_beneficiary):
    user = make_user("finance")
    project = make_project(status="active", members=[user])
    people = [make_beneficiary(project=project) for _ in range(2)]
    group = groups.create(project, "November", "")
    groups.add_members(group, people)
    _chain(project)
    db.session.commit()
    login(client, user)
    return project, group


@pytest.fixture
def vendor_world(app, client, make_project, make_beneficiary, make_vendor):
    app.config["VENDOR_CHARGE_LIMIT"] = "10000 per minute"  # the limit is not what is tested
    project = make_project(name="Winter food", status="active")
    person = make_beneficiary(project=project, phone="9841000001")
    vendor = make_vendor(project=project, status="approved", name="Corner Shop")
    _chain(project)
    db.session.add(
        Entitlement(
            project_id=project.id,
            beneficiary_id=person.id,
            address=pseudonym(person.id),
            allocated=5_000,
        )
    )
    db.session.commit()
    sign_in(client, vendor)
    return project


def fund(client, project, text):
    return client.post(
        f"/projects/{project.id}/chain/fund", data={"amount": text, "note": "x", "confirmed": "yes"}
    )


def draft(client, project, group, text):
    return client.post(
        f"/projects/{project.id}/disbursements/new",
        data={"title": "Nov", "amount": text, "group_id": group.id, "batch_size": 10},
    )


def charge(client, project, text):
    return client.post(
        "/vendor/charge",
        data={"project_id": project.id, "phone": "9841000001", "amount": text},
    )


def _refused(response, text, before, status):
    assert response.status_code == status, (text, response.status_code)
    assert message_for(text) in response.get_data(as_text=True), text
    assert written() == before, text


# --- funding ---------------------------------------------------------------------------------


def test_funding_refuses_bad_amounts_with_a_field_error(staff, client):
    project, _ = staff
    before = written()
    for text in REFUSED:
        _refused(fund(client, project, text), text, before, 422)


def test_funding_takes_what_the_page_shows(staff, client, second_approver):
    project, _ = staff
    assert fund(client, project, "12,34,567.50").status_code == 302
    assert db.session.scalar(select(ApprovalRequest.amount)) == 123_456_750
    assert count(Funding) == 0  # nothing is minted before someone else approves
    second_approver.approve("funding")
    assert db.session.scalar(select(Funding.amount)) == 123_456_750
    assert count(Job) == 1


def test_funding_past_what_a_project_can_hold_is_refused(app, staff, client):
    project, _ = staff
    app.config["AMOUNT_MAX_UNITS"] = 10**20  # only the column bound is left
    db.session.get(ProjectChain, project.id).funded = amounts.COLUMN_MAX - 10
    db.session.commit()
    response = fund(client, project, "1")
    assert response.status_code == 422
    assert "past what it can hold" in response.get_data(as_text=True)
    assert count(Funding) == 0 and count(Job) == 0 and count(ApprovalRequest) == 0


@hostile
@given(text=NEAR_NUMBERS)
def test_funding_never_writes_a_refused_amount(staff, client, text):
    assume(_is_refused(text))
    project, _ = staff
    before = written()
    _refused(fund(client, project, text), text, before, 422)


def test_in_the_nepali_locale_what_a_page_shows_is_read_back(app, staff, client, second_approver):
    project, group = staff
    app.config["AMOUNT_LOCALE"] = "ne"
    assert fund(client, project, "1,23,456.50").status_code == 302
    second_approver.approve("funding")
    page = client.get(f"/projects/{project.id}/chain").get_data(as_text=True)
    shown = re.search(r"NPR\u00a0([०-९,.]+) on its way", page).group(1)
    assert shown == "१,२३,४५६.५०"
    assert draft(client, project, group, shown).status_code == 302
    assert db.session.scalar(select(Disbursement.amount_each)) == 12_345_650


# --- disbursement draft ----------------------------------------------------------------------


def test_disbursement_draft_refuses_bad_amounts_with_a_field_error(staff, client):
    project, group = staff
    before = written()
    for text in REFUSED:
        _refused(draft(client, project, group, text), text, before, 422)


def test_disbursement_draft_reads_grouped_devanagari(staff, client):
    project, group = staff
    assert draft(client, project, group, "१,५००.५०").status_code == 302
    d = db.session.scalar(select(Disbursement))
    assert (d.amount_each, d.total) == (150_050, 300_100)


def test_a_total_past_what_a_project_can_hold_is_refused(app, staff, client):
    project, group = staff
    app.config["AMOUNT_MAX_UNITS"] = 10**20
    response = draft(client, project, group, f"{amounts.COLUMN_MAX // 100:,}")
    assert response.status_code == 422
    assert "more than a project can hold" in response.get_data(as_text=True)
    assert count(Disbursement) == 0 and count(DisbursementItem) == 0


@hostile
@given(text=NEAR_NUMBERS)
def test_disbursement_draft_never_writes_a_refused_amount(staff, client, text):
    assume(_is_refused(text))
    project, group = staff
    before = written()
    _refused(draft(client, project, group, text), text, before, 422)


# --- vendor charge ---------------------------------------------------------------------------


def test_vendor_charge_refuses_bad_amounts_with_a_field_error(vendor_world, client):
    before = written()
    for text in REFUSED:
        _refused(charge(client, vendor_world, text), text, before, 200)


@hostile
@given(text=NEAR_NUMBERS)
def test_vendor_charge_never_sends_a_code_for_a_refused_amount(vendor_world, client, text):
    assume(_is_refused(text))
    before = written()
    _refused(charge(client, vendor_world, text), text, before, 200)


def test_vendor_charge_code_sms_shows_the_amount_as_typed_back(vendor_world, client):
    response = charge(client, vendor_world, "१२.५०")
    assert response.status_code == 302
    assert db.session.scalar(select(Redemption.amount)) == 1_250
    sms = db.session.scalar(select(OutboxMessage.body).order_by(OutboxMessage.id.desc()))
    shown = sms.split(" to pay NPR ", 1)[1].split(" at ", 1)[0]
    assert amounts.parse(shown, 2) == 1_250


def test_vendor_charge_for_a_project_not_theirs_is_refused(vendor_world, client):
    response = client.post(
        "/vendor/charge", data={"project_id": 999, "phone": "9841000001", "amount": "1"}
    )
    assert "Choose one of your projects." in response.get_data(as_text=True)
    assert count(Redemption) == 0


def _is_refused(text: str) -> bool:
    try:
        amounts.parse(text, 2)
    except amounts.AmountError:
        return True
    return False

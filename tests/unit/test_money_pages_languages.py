"""The money pages in the staff user's language: a disbursement in Nepali (Devanagari digits in
its amounts), the approvals page in Arabic (right to left), and amount errors in Nepali."""

from __future__ import annotations

import json
import re

import pytest
from flask_babel import refresh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.chain import funding_approval
from portal.disbursements import services as disbursements
from portal.extensions import db
from portal.money import amounts
from tests.support import chain

DEVANAGARI_LETTERS = re.compile("[\u0900-\u0963\u0970-\u097f]")


def html_tag(page: str) -> str:
    return re.search(r"<html[^>]*>", page).group(0)


def _speaking(make_user, locale: str, role: str = "admin", name: str | None = None):
    user = make_user(role, name=name)
    user.locale = locale
    return user


@pytest.fixture
def draft(app, make_project, make_beneficiary):
    project = make_project(name="Winter relief", status="active")
    chain.pretend_deployed(project, decimals=2)
    people = [make_beneficiary(project=project) for _ in range(3)]
    db.session.flush()
    made, _left_out = disbursements.create(
        project,
        title="November basket",
        amount=123_450,  # 1,234.50 each
        group_id=None,
        beneficiary_ids=[p.id for p in people],
        batch_size=100,
        user_id=None,
    )
    db.session.commit()
    return project, made


def test_a_disbursement_page_in_nepali(client, login, make_user, draft):
    project, made = draft
    login(client, _speaking(make_user, "ne"))
    page = client.get(f"/disbursements/{made.id}").get_data(as_text=True)
    assert 'lang="ne"' in html_tag(page)
    for words in ("पठाउन तयार", "मानिसहरू", "ब्याचहरू", "छुट्याउन सुरु गर्नुहोस्"):
        assert words in page, words
    # 3 people × 1,234.50 = 3,703.50, in Devanagari digits; none of it in Latin digits.
    assert "NPR\u00a0१,२३४.५०" in page and "NPR\u00a0३,७०३.५०" in page
    assert "1,234.50" not in page and "3,703.50" not in page
    # Not funded: the shortfall says so in Nepali, with the amount in Nepali digits.
    assert "अझै NPR\u00a0३,७०३.५० चाहिन्छ" in page
    assert "Ready to send" not in page and "People" not in page

    listing = client.get(f"/projects/{project.id}/disbursements").get_data(as_text=True)
    assert "नयाँ वितरण" in listing and "NPR\u00a0१,२३४.५०" in listing


def test_the_same_page_stays_english_for_an_english_user(client, login, make_user, draft):
    _project, made = draft
    login(client, make_user("admin"))
    page = client.get(f"/disbursements/{made.id}").get_data(as_text=True)
    assert 'lang="en"' in html_tag(page)
    assert "Ready to send" in page and "NPR\u00a03,703.50" in page
    assert not DEVANAGARI_LETTERS.search(page)


def test_the_approvals_page_in_arabic_runs_right_to_left(client, login, make_user, make_project):
    asker = make_user("finance", name="Asker Person")
    project = make_project(name="Winter food", status="active", members=[asker])
    chain.pretend_deployed(project, decimals=2)
    db.session.flush()
    funding_approval.ask(project, 25_000, "grant B", asker.id)
    db.session.commit()

    login(client, _speaking(make_user, "ar"))
    page = client.get("/approvals").get_data(as_text=True)
    assert 'lang="ar"' in html_tag(page) and 'dir="rtl"' in html_tag(page)
    assert "الموافقات المعلّقة" in page and "بانتظارك" in page
    # The request's own sentence and its decision buttons are Arabic too.
    assert "تمويل Winter food بمبلغ NPR\u00a0250.00 (grant B)" in page
    assert ">موافقة</button>" in page and ">رفض</button>" in page
    assert "Pending approvals" not in page and ">Approve<" not in page
    # The scripts' words are in the page, in Arabic, for the live updates.
    block = re.search(r'<script type="application/json" id="i18n-strings">(.*?)</script>', page)
    strings = json.loads(block.group(1))
    assert strings["approval_no_longer"] == "لم يعد ينتظر: {status}."
    assert strings["approval_labels"]["pending"] == "قيد الانتظار"


def test_an_amount_error_in_nepali(client, login, make_user, make_project):
    project = make_project(status="active")
    chain.pretend_deployed(project, decimals=2)
    login(client, _speaking(make_user, "ne"))
    answer = client.post(f"/projects/{project.id}/chain/fund", data={"amount": "1.001"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "दशमलव बिन्दुपछि बढीमा २ अङ्क।" in page
    assert "digits after the decimal point" not in page
    # The field's hint writes its example in Nepali digits too.
    assert "१२.५०" in page


# The app is only read here: one app for every example is what the test means.
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.text(max_size=24) | st.from_regex(r"[-+ ,.0-9e०-९]{0,20}", fullmatch=True))
def test_every_refusal_of_an_amount_reads_in_nepali(app, text):
    """Whatever is typed, a refusal is a Nepali sentence on a Nepali page and an English one on
    an English page: no message path is left out of the catalog."""
    with app.test_request_context(headers={"Accept-Language": "en"}):
        refresh()  # the test's app context outlives each request: choose again
        try:
            amounts.parse(text, 2)
        except amounts.AmountError as exc:
            english = exc.message
        else:
            return  # an amount: nothing to refuse
    with app.test_request_context(headers={"Accept-Language": "ne"}):
        refresh()
        with pytest.raises(amounts.AmountError) as refused:
            amounts.parse(text, 2)
    nepali = refused.value.message
    assert not DEVANAGARI_LETTERS.search(english), english
    assert DEVANAGARI_LETTERS.search(nepali), (text, nepali)
    assert nepali != english

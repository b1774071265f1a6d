"""Pages in the user's language: which language a request gets (staff preference, vendor's
choice, the browser's), ``lang`` and ``dir`` on the page, dates, counts and amounts in the
locale's digits, and language names instead of codes."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from flask_babel import force_locale, refresh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal.comms.models import OutboxMessage
from portal.extensions import db
from portal.i18n import formatting, locales
from portal.money import amounts
from tests.support import chain

CODE = re.compile(r"\b(\d{6})\b")
DEVANAGARI = re.compile("[०-९]")


def html_tag(page: str) -> str:
    return re.search(r"<html[^>]*>", page).group(0)


def test_signed_out_pages_follow_the_browser(client):
    page = client.get("/login", headers={"Accept-Language": "ne-NP,ne;q=0.9,en;q=0.5"})
    text = page.get_data(as_text=True)
    assert 'lang="ne"' in html_tag(text) and 'dir="ltr"' in html_tag(text)
    assert "साइन इन गर्नुहोस्" in text and "Forgot password?" not in text
    arabic = client.get("/login", headers={"Accept-Language": "ar"}).get_data(as_text=True)
    assert 'lang="ar"' in html_tag(arabic) and 'dir="rtl"' in html_tag(arabic)
    assert "تسجيل الدخول" in arabic
    # A language the pages are not written in falls back to English.
    french = client.get("/login", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert 'lang="en"' in html_tag(french) and "Forgot password?" in french


def test_a_staff_user_chooses_the_language_on_the_account_page(client, make_user, login):
    user = make_user()
    login(client, user)
    account = client.get("/account").get_data(as_text=True)
    assert "नेपाली (Nepali)" in account and "العربية (Arabic)" in account
    response = client.post("/account/language", data={"locale": "ne"})
    assert response.status_code == 302
    page = client.get("/account", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'lang="ne"' in html_tag(page) and "भाषा सुरक्षित गरियो।" in page
    assert "नेपाली" in page and "(Nepali)" not in page  # its own name, in its own pages
    refused = client.post("/account/language", data={"locale": "xx"})
    assert refused.status_code == 302
    assert db.session.get(type(user), user.id).locale == "ne"


def test_the_language_route_needs_a_signed_in_user(client):
    response = client.post("/account/language", data={"locale": "ne"})
    assert response.status_code in (302, 401)
    assert "/login" in response.headers.get("Location", "/login")


@pytest.fixture
def vendor_world(app, make_project, make_beneficiary, make_vendor):
    project = make_project(name="Winter food", status="active")
    person = make_beneficiary(project=project, phone="9841000001", language="ne")
    vendor = make_vendor(project=project, status="approved", name="Corner Shop")
    chain.pretend_deployed(project)
    chain.entitle(project, person, 500_000)
    db.session.commit()
    return project, person, vendor


def _last_code(to: str) -> str:
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    for message in db.session.scalars(query):
        if message.recipient == to:
            return CODE.search(message.body).group(1)
    raise AssertionError("no message")


def vendor_sign_in(client, vendor):
    client.post("/vendor/sign-in", data={"phone": vendor.phone})
    response = client.post("/vendor/sign-in/code", data={"code": _last_code(vendor.phone)})
    assert response.status_code == 302


def test_a_vendor_chooses_the_language_of_the_phone_pages(client, vendor_world):
    _, _, vendor = vendor_world
    vendor_sign_in(client, vendor)
    page = client.get("/vendor/language").get_data(as_text=True)
    assert "नेपाली (Nepali)" in page
    assert client.post("/vendor/language", data={"locale": "ne"}).status_code == 302
    home = client.get("/vendor/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'lang="ne"' in html_tag(home)
    assert "लाभग्राहीबाट भुक्तानी लिनुहोस्" in home  # "Charge a beneficiary"
    assert "Charge a beneficiary" not in home
    # A charge typed in Devanagari digits; the page writes the amount back in them.
    response = client.post(
        "/vendor/charge",
        data={"project_id": vendor_world[0].id, "phone": "9841000001", "amount": "१,२५०.५०"},
    )
    assert response.status_code == 302
    code_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "१,२५०.५०" in code_page
    # The beneficiary chose Nepali at enrolment: the code comes in Nepali.
    sms = db.session.scalar(
        select(OutboxMessage.body).where(OutboxMessage.purpose == "redemption.code")
    )
    assert "तपाईंको कोड" in sms and "१,२५०.५०" in sms
    assert CODE.search(sms)  # the code itself stays in 0-9, as the keypad types it
    # The vendor's next sign-in code is in Nepali too.
    client.post("/vendor/sign-out")
    client.post("/vendor/sign-in", data={"phone": vendor.phone})
    signin_sms = db.session.scalar(
        select(OutboxMessage.body)
        .where(OutboxMessage.purpose == "vendor.sign_in")
        .order_by(OutboxMessage.id.desc())
    )
    assert "साइन इन गर्ने तपाईंको कोड" in signin_sms


def test_vendor_pages_carry_the_script_strings(client, vendor_world):
    _, _, vendor = vendor_world
    vendor_sign_in(client, vendor)
    client.post("/vendor/language", data={"locale": "ne"})
    page = client.get("/vendor/charge").get_data(as_text=True)
    block = re.search(r'<script type="application/json" id="i18n-strings">(.*?)</script>', page)
    assert block and "क्यामेरा" in block.group(1).encode().decode("unicode_escape")


def test_dates_and_counts_in_the_locale_digits(app):
    moment = datetime(2026, 12, 4, 10, 5)
    with app.test_request_context():
        with force_locale("ne"):
            assert formatting.when(moment) == "२०२६ डिसेम्बर ४ १०:०५ UTC"
            assert formatting.number(1234567) == "१२,३४,५६७"
            assert not re.search("[0-9]", formatting.short_when(moment))
        with force_locale("en"):
            assert formatting.when(moment) == "2026-12-04 10:05 UTC"
            assert formatting.number(1234567) == "1,234,567"
        with force_locale("ar"):
            # Arabic as the region writes it in this portal: Latin digits (Babel's default).
            assert re.search("[0-9]", formatting.when(moment))


# The app is only read here: one app for every example is what the test means.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(base=st.integers(min_value=0, max_value=10**11), decimals=st.integers(0, 6))
def test_amounts_on_a_nepali_page_are_devanagari_and_read_back(app, base, decimals):
    with app.test_request_context(headers={"Accept-Language": "ne"}):
        refresh()  # the test's app context outlives each request: choose again
        text = amounts.format(base, decimals)
        assert not re.search("[0-9]", text)
        if base:
            assert amounts.parse(text, decimals) == base
    with app.test_request_context(headers={"Accept-Language": "en"}):
        refresh()
        assert not DEVANAGARI.search(amounts.format(base, decimals))


def test_language_names_from_the_locale_data():
    assert locales.language_name("ne", "en") == "नेपाली (Nepali)"
    assert locales.language_name("en", "en") == "English"
    assert locales.language_name("ne", "ne") == "नेपाली"
    assert locales.language_name("ar", "en") == "العربية (Arabic)"
    assert locales.native_digits("ne") == "०१२३४५६७८९"
    assert locales.is_rtl("ar") and not locales.is_rtl("ne")


def test_the_beneficiary_form_shows_language_names(client, make_user, login, make_project):
    user = make_user()
    make_project(status="active")
    login(client, user)
    page = client.get("/beneficiaries/new").get_data(as_text=True)
    assert "नेपाली (Nepali)" in page and ">ne<" not in page

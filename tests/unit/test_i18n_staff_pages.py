"""The staff pages in the staff member's language: the home page and the live dashboard in
Nepali (Devanagari digits in amounts and counts), the account page in Arabic laid out right to
left, and emails written in their reader's language."""

from __future__ import annotations

import json
import re

import pytest
from flask_babel import force_locale
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal.accounts.models import User
from portal.comms.models import OutboxMessage
from portal.dashboard import display
from portal.extensions import db
from portal.i18n import statuses
from portal.money import amounts
from tests.support import chain

DEVANAGARI = re.compile("[०-९]")
LATIN_DIGIT = re.compile("[0-9]")
# 1,234,567.89 in the project's base units (2 decimals): Nepali groups it 12,34,567.89.
ALLOCATED = 123_456_789
NEPALI_AMOUNT = "१२,३४,५६७.८९"


def html_tag(page: str) -> str:
    return re.search(r"<html[^>]*>", page).group(0)


def speaks(user, code: str) -> None:
    db.session.get(User, user.id).locale = code
    db.session.commit()


@pytest.fixture
def funded(make_project, make_beneficiary):
    project = make_project(name="Koshi winter aid", status="active")
    person = make_beneficiary(project=project)
    chain.pretend_deployed(project)
    chain.entitle(project, person, ALLOCATED)
    db.session.commit()
    return project


def figure(page: str, attribute: str) -> str:
    found = re.search(rf"{attribute}[^>]*>([^<]*)<", page)
    assert found, attribute
    return found.group(1)


def test_the_home_page_in_nepali(client, make_user, login, funded):
    user = make_user("admin")
    speaks(user, "ne")
    login(client, user)
    page = client.get("/").get_data(as_text=True)
    assert 'lang="ne"' in html_tag(page)
    for words in ("तपाईंका परियोजनाहरू", "बाँडिएको", "बाँकी", "लाइभ हेर्नुहोस्"):
        assert words in page, words
    allocated = figure(page, 'data-figure="allocated"')
    assert NEPALI_AMOUNT in allocated and not LATIN_DIGIT.search(allocated.replace("NPR", ""))
    # The figures in the stat tiles are counts, in Devanagari too.
    assert DEVANAGARI.search(figure(page, 'class="stat__n"'))
    # No English left in the words the page itself writes.
    for english in ("Your projects", "Allocated", "Follow it live", "Good to see you"):
        assert english not in page, english


def test_the_live_dashboard_in_nepali(client, make_user, login, funded):
    user = make_user("admin")
    speaks(user, "ne")
    login(client, user)
    page = client.get(f"/projects/{funded.id}/live").get_data(as_text=True)
    assert 'lang="ne"' in html_tag(page)
    assert figure(page, 'data-kpi="allocated"') == NEPALI_AMOUNT
    assert figure(page, 'data-kpi="people-allocated"') == "१"
    for words in ("बाँडिएको", "सेवा पाएका मान्छे", "भर्खरका खर्चहरू", "पूरा पर्दा"):
        assert words in page, words
    # The script redraws pushed snapshots with the page's digits and grouping, and its words.
    assert 'data-digits="०१२३४५६७८९"' in page and 'data-grouping="indian"' in page
    block = re.search(r'<script type="application/json" id="i18n-strings">(.*?)</script>', page)
    strings = json.loads(block.group(1))
    assert strings["dash_no_redemptions"] == "अहिलेसम्म कुनै खर्च भएको छैन।"
    assert strings["status_labels"]["confirmed"] == "पक्का भयो"
    # The stored snapshot every screen shares keeps the portal's own writing of amounts.
    embedded = re.search(r"data-snapshot='([^']*)'", page).group(1)
    copy = json.loads(embedded.replace("&#34;", '"'))
    assert copy["display"]["allocated"] == NEPALI_AMOUNT  # this reader's copy
    from portal.dashboard import live

    assert live.current(funded.id)["display"]["allocated"] == "1,234,567.89"


def test_the_account_page_in_arabic(client, make_user, login):
    user = make_user("admin")
    speaks(user, "ar")
    login(client, user)
    page = client.get("/account").get_data(as_text=True)
    assert 'lang="ar"' in html_tag(page) and 'dir="rtl"' in html_tag(page)
    for words in ("حسابك", "تغيير كلمة المرور", "الجلسات المفتوحة"):
        assert words in page, words
    for english in ("Your account", "Change password", "Signed-in sessions", "Browser"):
        assert english not in page, english


def test_pages_marked_for_english_readers_are_unchanged(client, make_user, login, funded):
    user = make_user("admin")
    login(client, user)
    page = client.get(f"/projects/{funded.id}/live").get_data(as_text=True)
    assert figure(page, 'data-kpi="allocated"') == "1,234,567.89"
    assert "Latest redemptions" in page and 'data-digits="0123456789"' in page


# --- emails in their reader's language ------------------------------------------------------


def emails(purpose: str) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.purpose == purpose)
    return list(db.session.scalars(query.order_by(OutboxMessage.id)))


def test_a_reset_link_email_in_the_users_language(client, make_user, login):
    admin = make_user("admin")  # the admin reads English pages
    reader = make_user("viewer", name="Sita Gurung")
    speaks(reader, "ne")
    login(client, admin)
    answer = client.post(f"/users/{reader.id}/send-reset")
    assert answer.status_code == 302
    (mail,) = emails("accounts.password_reset")
    assert mail.subject == "आफ्नो पोर्टलको पासवर्ड नयाँ बनाउनुहोस्"
    assert "नमस्ते Sita Gurung," in mail.body and "Hello" not in mail.body
    assert "६० मिनेट" in mail.body  # the link's life, in Devanagari digits
    assert 'lang="ne"' in mail.html_body and "नयाँ पासवर्ड छान्नुहोस्" in mail.html_body
    # The admin's own page stayed in English.
    assert "A password reset link was emailed" in client.get(f"/users/{reader.id}").get_data(
        as_text=True
    )


def test_an_invitation_goes_in_the_inviters_language(client, make_user, login):
    admin = make_user("admin")
    speaks(admin, "ne")
    login(client, admin)
    role_id = db.session.scalar(select(User.role_id).where(User.id == admin.id))
    answer = client.post(
        "/users/invitations/new", data={"email": "newcomer@example.org", "role_id": role_id}
    )
    assert answer.status_code == 302
    (mail,) = emails("accounts.invitation")
    assert mail.subject == "तपाईंलाई सहायता वितरण पोर्टलमा निम्तो छ"
    assert "निम्तो" in mail.body and "invited" not in mail.body


def test_an_arabic_notice_is_laid_out_right_to_left(app, make_user):
    from portal.accounts import notify
    from portal.timeutil import utcnow

    user = make_user("admin")
    speaks(user, "ar")
    with app.test_request_context("/"):  # a page in English; the notice is in Arabic
        subject, body = notify.render("two_factor_reset", user, at=utcnow())
    notify.send_email(user, "two_factor_reset", at=utcnow())  # as a job sends it
    db.session.commit()
    assert "Hello" not in body and "مرحبًا" in body
    (mail,) = emails("account.two_factor_reset")
    assert mail.subject == subject and 'dir="rtl"' in mail.html_body


# --- words that come from codes -------------------------------------------------------------


def test_every_status_label_is_translated(app):
    with app.test_request_context("/"), force_locale("ne"):
        for code, label in statuses.LABELS.items():
            assert str(label) != code.replace("_", " "), code
            assert not re.search("[a-z]", str(label)), (code, str(label))
    assert statuses.status_label("some_new_state") == "some new state"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.integers(min_value=0, max_value=10**11),
    decimals=st.integers(min_value=0, max_value=6),
    locale=st.sampled_from(["en", "ne", "ar"]),
)
def test_a_readers_dashboard_amounts_read_back_to_the_snapshots(app, base, decimals, locale):
    """Whatever the amount and the reader's language, each amount the page shows is the
    snapshot's integer written in that language, and reads back to it."""
    snapshot = {
        "decimals": decimals,
        "totals": {
            "allocated": base,
            "redeemed": base // 2,
            "pending": 0,
            "revoked": 1,
            "remaining": base - base // 2,
        },
        "display": {"allocated": "stale"},
        "vendors": [{"amount": base, "pending_amount": base // 3}],
        "feed": [{"amount": base // 7}],
    }
    with app.test_request_context("/"), force_locale(locale):
        shown = display.for_reader(snapshot)
        assert set(shown["display"]) == {"allocated", "redeemed", "pending", "remaining"}
        for key, text in shown["display"].items():
            assert amounts.parse(text, decimals, allow_zero=True) == snapshot["totals"][key]
        vendor = shown["vendors"][0]
        assert amounts.parse(vendor["amount_display"], decimals, allow_zero=True) == base
        feed = shown["feed"][0]["amount_display"]
        assert amounts.parse(feed, decimals, allow_zero=True) == base // 7
        assert bool(DEVANAGARI.search(shown["display"]["allocated"])) == (locale == "ne")
    assert snapshot["display"] == {"allocated": "stale"}  # the shared snapshot is not touched


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seconds=st.integers(min_value=1, max_value=10**6))
def test_waits_are_written_in_the_readers_language(app, seconds):
    """'in 4 minutes' (quotas) and 'Wait 4 minutes' (sign-in) for any wait: Nepali words and
    digits on a Nepali page, the English sentence otherwise."""
    from portal.accounts import throttle
    from portal.quotas import services as quotas

    with app.test_request_context("/"), force_locale("ne"):
        for text in (quotas.when(seconds), throttle.wait_words(seconds)):
            assert not LATIN_DIGIT.search(text) and not re.search("[a-z]", text), text
        assert DEVANAGARI.search(quotas.when(seconds))
    with app.test_request_context("/"):
        assert re.fullmatch(r"in \d+ (second|minute|hour)s?", quotas.when(seconds))

"""The campaign, delivery log, outbox, grievance and message pages in the staff user's language:
Nepali words and Devanagari digits (the campaign preview's cost is money), and a page in Arabic,
right to left."""

from __future__ import annotations

import re

import pytest

from portal.campaigns import services
from portal.extensions import db
from portal.grievances import services as grievances

DEVANAGARI_MONEY = re.compile("USD\u00a0[०-९]+\\.[०-९]{4}")


@pytest.fixture
def staff(app, client, login, make_user, make_project, make_beneficiary):
    app.config["SMS_PRICE_PER_SEGMENT"] = "0.05"
    manager = make_user("programme manager")
    project = make_project(status="active", members=[manager])
    people = [make_beneficiary(project, phone=f"98530000{i:02d}", language="ne") for i in range(12)]
    campaign = services.create(
        project,
        {"name": "Notice", "channel": "sms", "audience": "project"},
        {"en": "Distribution on Friday.", "ne": "शुक्रबार वितरण।"},
        manager.id,
    )
    grievances.open_grievance("staff", "Words", beneficiary=people[0], created_by=manager)
    db.session.commit()
    login(client, manager)
    return client, manager, campaign


def _as(client, user, locale: str) -> None:
    assert client.post("/account/language", data={"locale": locale}).status_code == 302
    db.session.expire_all()
    assert db.session.get(type(user), user.id).locale == locale


def test_the_pages_in_nepali(staff):
    client, manager, campaign = staff
    _as(client, manager, "ne")
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert 'lang="ne"' in page
    assert "प्रगति" in page and "पूर्वावलोकन" in page and "अनुमानित खर्च" in page
    assert "१२ जना" in page  # the count, in Devanagari digits
    assert DEVANAGARI_MONEY.search(page), "the cost is money in Nepali digits"
    assert "USD\u00a00." not in page
    expected = {
        "/campaigns": "अभियानहरू",
        "/campaigns/new": "नयाँ अभियान",
        "/delivery-log": "डेलिभरी लग",
        "/grievances/": "गुनासोहरू",
        "/messages/": "लाभग्राहीहरूलाई सन्देश",
    }
    for url, words in expected.items():
        response = client.get(url)
        assert response.status_code == 200, url
        assert words in response.get_data(as_text=True), url
    grievance_list = client.get("/grievances/").get_data(as_text=True)
    assert "नयाँ" in grievance_list  # the status label, not the code "new"
    assert ">new<" not in grievance_list


def test_a_page_in_arabic_reads_right_to_left(staff):
    client, manager, campaign = staff
    _as(client, manager, "ar")
    page = client.get("/delivery-log").get_data(as_text=True)
    assert 'dir="rtl"' in re.search(r"<html[^>]*>", page).group(0)
    assert "سجل التسليم" in page and "عوامل التصفية" in page
    shown = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "التقدم" in shown and "مسودة" in shown

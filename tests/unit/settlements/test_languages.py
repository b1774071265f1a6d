"""Settlements in the reader's language: the staff pages in Nepali (Devanagari amounts), the
failed payout's note on the vendor's phone in the vendor's language, and the live event's note
code that lets a page's script write the note in its own language."""

from __future__ import annotations

import json
import re

from portal.extensions import db
from portal.settlements import live
from portal.settlements.models import CLOSED_PREFIX, Settlement, reason_shown
from portal.vendors.models import Vendor
from tests.unit.settlements.test_repay import _burned_and_failed
from tests.unit.test_vendor_portal import sign_in

DEVANAGARI_AMOUNT = "१२.५०"  # 12.50, as a Nepali page writes it


def _html_tag(page: str) -> str:
    return re.search(r"<html[^>]*>", page).group(0)


def _strings(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="i18n-strings">(.*?)</script>', page)
    assert block, "the page carries no strings for its scripts"
    return json.loads(block.group(1))


def test_the_settlement_pages_in_nepali(world, worker, app, login):
    project, _pc, _vendor, finance, _approver = world
    row = _burned_and_failed(world, worker)
    client = app.test_client()
    login(client, finance)
    assert client.post("/account/language", data={"locale": "ne"}).status_code == 302

    page = client.get(f"/settlements/{row.id}").get_data(as_text=True)
    assert 'lang="ne"' in _html_tag(page)
    assert "फछ्र्यौट #" in page and "स्वीकृति" in page  # "Settlement #", "Approval"
    assert "Owed to the vendor" not in page and "विक्रेतालाई तिर्न बाँकी" in page
    # The note for staff, with the amount in Devanagari digits.
    assert f"विक्रेतालाई NPR\u00a0{DEVANAGARI_AMOUNT} तिर्न बाँकी: फेरि भुक्तानी गर्नुहोस्" in page
    assert "Pay again" not in page and "फेरि तिर्नुहोस्" in page
    # The staff base layout carries the script strings, in Nepali.
    strings = _strings(page)
    assert strings["digits"] == "०१२३४५६७८९"
    assert strings["settlement_staff_notes"]["again"] == (
        "विक्रेतालाई {amount} तिर्न बाँकी: फेरि भुक्तानी गर्नुहोस्"
    )

    listing = client.get(f"/projects/{project.id}/settlements").get_data(as_text=True)
    assert "फछ्र्यौटहरू" in listing and DEVANAGARI_AMOUNT in listing
    assert "भुक्तानी असफल भयो" in listing  # the status label, not the code
    owed = client.get(f"/projects/{project.id}/settlements/owed").get_data(as_text=True)
    assert "विक्रेतालाई तिर्न बाँकी" in owed and DEVANAGARI_AMOUNT in owed


def test_the_vendor_reads_the_failed_payout_note_in_nepali(world, worker, app):
    _project, _pc, vendor, _finance, _approver = world
    row = _burned_and_failed(world, worker)
    db.session.get(Vendor, vendor.id).locale = "ne"
    db.session.commit()
    client = app.test_client()
    sign_in(client, vendor)
    page = client.get("/vendor/cash-out").get_data(as_text=True)
    assert 'lang="ne"' in _html_tag(page)
    assert f"NPR\u00a0{DEVANAGARI_AMOUNT} फेरि भुक्तानी हुनेछ" in page
    assert "will be paid again" not in page
    # The script writes a pushed change's note from the page's own sentence and the amount
    # the page shows (a worker pushes it in English).
    assert _strings(page)["settlement_notes"]["again"] == "{amount} फेरि भुक्तानी हुनेछ"
    assert f"data-settlement-amount>NPR\u00a0{DEVANAGARI_AMOUNT}<" in page
    event = live.serialize(db.session.get(Settlement, row.id))
    assert event["note_code"] == "again" and "12.50" in event["amount"]


def test_stored_reasons_are_shown_in_the_readers_language(app):
    from flask_babel import force_locale

    with app.test_request_context(), force_locale("ne"):
        assert reason_shown("Not approved.") == "स्वीकृत भएन।"
        assert reason_shown(f"{CLOSED_PREFIX}paid in cash") == (
            "भुक्तानी असफल भएपछि बन्द गरियो (चेनमा रकम नष्ट गरिएको): paid in cash"
        )
        # A provider's or a person's words are shown as written.
        assert reason_shown("account closed") == "account closed"
        assert reason_shown("") == ""

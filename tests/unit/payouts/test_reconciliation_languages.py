"""The reconciliation page in Nepali: its words, a statement line's amount in Devanagari
digits, and the rows of a refused statement explained in Nepali."""

from __future__ import annotations

import re

import pytest

from portal.extensions import db
from tests.unit.payouts.test_routes import _statement, _upload


@pytest.fixture
def nepali_staff(client, login, payout_world):
    payout_world.user.locale = "ne"
    db.session.commit()
    login(client, payout_world.user)
    return client


def test_the_reconciliation_page_in_nepali(nepali_staff, payout_world):
    project = payout_world.project
    body = _statement([("11111111-2222-4333-8444-555555555555", "1500.00", "UGX", "")])
    assert _upload(nepali_staff, project, body).status_code == 302

    page = nepali_staff.get(f"/reconciliation/?project={project.id}").get_data(as_text=True)
    assert 'lang="ne"' in re.search(r"<html[^>]*>", page).group(0)
    for words in ("हिसाब मिलान", "मिलाउन बाँकी (१)", "मिलेका (०)", "अनपेक्षित", "हातैले मिलाउनुहोस्"):
        assert words in page, words
    assert "UGX\u00a0१,५००.००" in page and "1,500.00" not in page
    assert "statement.csv पङ्क्ति २" in page
    assert "To resolve" not in page and "Match by hand" not in page


def test_a_refused_statement_lists_its_rows_in_nepali(nepali_staff, payout_world):
    body = _statement(
        [
            ("", "1", "", ""),  # no reference
            ("abc", "10.001", "", ""),  # too many fraction digits
            ("abc", "10", "EUR", ""),  # another currency
        ]
    )
    answer = _upload(nepali_staff, payout_world.project, body)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "सच्याउनुपर्ने पङ्क्तिहरू" in page
    assert "सन्दर्भ कोड छैन वा सन्दर्भ कोड होइन।" in page
    assert "रकम: दशमलव बिन्दुपछि बढीमा २ अङ्क।" in page
    assert "मुद्रा EUR छ, UGX होइन।" in page
    assert "विवरणका ३ पङ्क्ति मिलेनन्" in page

"""Every kind of approval is named, and its requests described, in the reader's language: the
home page's "waiting for you" list and the approvals page show them to staff in Nepali or Arabic
as well as in English (the audit log keeps its English)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flask_babel import force_locale

from portal.approvals import kinds
from portal.settlements import approval, repayment

LOCALES = ("ne", "ar")


@pytest.mark.parametrize("locale", LOCALES)
def test_every_kind_has_its_name_in_the_language(app, locale):
    kinds.load()
    assert kinds.KINDS
    with app.test_request_context("/"):
        for kind in kinds.KINDS.values():
            with force_locale("en"):
                english = str(kind.label)
            with force_locale(locale):
                assert str(kind.label) != english, kind.name


@pytest.mark.parametrize("describe", [approval.describe, repayment.describe])
@pytest.mark.parametrize("locale", LOCALES)
def test_settlement_requests_are_described_in_the_language(app, monkeypatch, describe, locale):
    from portal.settlements import services

    monkeypatch.setattr(services, "money", lambda project_id, amount: "NPR 5.00")
    request = SimpleNamespace(subject_id=-1, project_id=None, amount=500)  # no such settlement
    with app.test_request_context("/"):
        with force_locale("en"):
            english = describe(request)
        with force_locale(locale):
            shown = describe(request)
    assert "NPR 5.00" in english and "NPR 5.00" in shown
    assert "vendor" in english and "vendor" not in shown and shown != english

"""Runtime settings: the default country is validated and drives phone normalisation."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.beneficiaries import normalize
from portal.errors import DomainError
from portal.extensions import db
from portal.settings import services as settings


def test_default_country_comes_from_config_until_set(app):
    assert settings.default_country() == app.config["DEFAULT_COUNTRY"] == "NP"


@pytest.mark.parametrize("value", ["", "XX", "Nepal", "np1", "ZZ"])
def test_default_country_refuses_unknown_codes(app, value):
    with pytest.raises(DomainError, match="country code"):
        settings.set_value(settings.DEFAULT_COUNTRY, value)
    assert settings.default_country() == "NP"


def test_default_country_is_normalised_and_saved(app):
    settings.set_value(settings.DEFAULT_COUNTRY, " ke ")
    db.session.commit()
    assert settings.default_country() == "KE"
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "settings.changed")
    ).one()
    assert '"to":"KE"' in entry.data


def test_unknown_setting_is_refused(app):
    with pytest.raises(DomainError, match="Unknown setting"):
        settings.set_value("max_budget", "100")


def test_changing_the_default_country_changes_how_local_numbers_are_read(make_beneficiary):
    with pytest.raises(normalize.InvalidValue):
        make_beneficiary(phone="0712345678")  # a Kenyan mobile, not valid in Nepal
    settings.set_value(settings.DEFAULT_COUNTRY, "KE")
    person = make_beneficiary(phone="0712345678")
    assert person.pii.phone == "+254712345678"


def test_setting_the_same_value_again_is_not_audited_twice(app):
    settings.set_value(settings.DEFAULT_COUNTRY, "BD")
    settings.set_value(settings.DEFAULT_COUNTRY, "bd")
    count = len(
        db.session.scalars(select(AuditEntry).where(AuditEntry.action == "settings.changed")).all()
    )
    assert count == 1


def test_the_settings_page_edits_the_kobo_allow_list(app, client, make_user, login):
    from portal.settings import services as settings

    login(client, make_user("admin"))
    page = client.post(
        "/settings/",
        data={"default_country": "NP", "kobo_allowed_hosts": "kobo.ngo.example, 0x7f.1"},
    )
    assert page.status_code == 200 and "is not a host name" in page.get_data(as_text=True)
    assert settings.get(settings.KOBO_ALLOWED_HOSTS) == app.config["KOBO_ALLOWED_HOSTS"]
    page = client.post(
        "/settings/",
        data={
            "default_country": "NP",
            "kobo_allowed_hosts": "Kobo.NGO.example:8443\nkf.kobotoolbox.org",
        },
    )
    assert page.status_code == 302
    assert settings.get(settings.KOBO_ALLOWED_HOSTS) == "kf.kobotoolbox.org, kobo.ngo.example:8443"
    changed = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "settings.changed")
    ).all()
    assert "Setting kobo_allowed_hosts changed" in [entry.summary for entry in changed]

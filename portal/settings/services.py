"""Reading and changing runtime settings; unknown keys are refused."""

from __future__ import annotations

import phonenumbers
from flask import current_app

from portal import events, outbound
from portal.errors import DomainError
from portal.extensions import db
from portal.settings.models import Setting

DEFAULT_COUNTRY = "default_country"
KOBO_ALLOWED_HOSTS = "kobo_allowed_hosts"
KNOWN = {
    DEFAULT_COUNTRY: "Default country for phone numbers (ISO 3166 alpha-2)",
    KOBO_ALLOWED_HOSTS: "KoboToolbox servers a source may name (host, host:port or host:*)",
}


def get(key: str) -> str:
    row = db.session.get(Setting, key)
    if row is not None:
        return row.value
    return current_app.config[key.upper()]


def default_country() -> str:
    return get(DEFAULT_COUNTRY)


def set_value(key: str, value: str) -> None:
    if key not in KNOWN:
        raise DomainError(f"Unknown setting {key}.")
    if key == DEFAULT_COUNTRY:
        value = value.strip().upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise DomainError("Not a country code phone numbers know (e.g. NP, KE, BD).")
    if key == KOBO_ALLOWED_HOSTS:
        try:
            value = ", ".join(sorted(outbound.host_entries(value)))
        except outbound.Refused as exc:
            raise DomainError(str(exc)) from None
        if len(value) > 2000:
            raise DomainError("Name fewer servers.")
    row = db.session.get(Setting, key)
    old = None if row is None else row.value
    if row is None:
        db.session.add(Setting(key=key, value=value))
    else:
        row.value = value
    db.session.flush()
    if old != value:
        events.settings_changed.send(
            key,
            action="settings.changed",
            summary=f"Setting {key} changed",
            data={"key": key, "from": old, "to": value},
        )

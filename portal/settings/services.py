"""Reading and changing runtime settings; unknown keys are refused."""

from __future__ import annotations

import phonenumbers
from flask import current_app
from flask_babel import gettext as _

from portal import crypto, events, outbound
from portal.errors import DomainError
from portal.extensions import db
from portal.settings.models import Setting

DEFAULT_COUNTRY = "default_country"
KOBO_ALLOWED_HOSTS = "kobo_allowed_hosts"
KNOWN = {
    DEFAULT_COUNTRY: "Default country for phone numbers (ISO 3166 alpha-2)",
    KOBO_ALLOWED_HOSTS: "KoboToolbox servers a source may name (host, host:port or host:*)",
}
# Settings kept encrypted and never shown back (only whether they are set). Features add theirs
# with ``register_secret``; the value is checked by the feature before it is stored.
SECRETS: set[str] = set()


def register(key: str, description: str, *, secret: bool = False) -> None:
    """A feature's own setting: known here, so ``set_value`` accepts it."""
    KNOWN[key] = description
    if secret:
        SECRETS.add(key)


def get_secret(key: str) -> str:
    """A secret setting in clear text ("" when not set); the environment's value otherwise."""
    row = db.session.get(Setting, key)
    if row is not None:
        return crypto.decrypt(row.value) if row.value else ""
    return current_app.config.get(key.upper()) or ""


def is_set(key: str) -> bool:
    return bool(get_secret(key) if key in SECRETS else get(key))


def get(key: str) -> str:
    row = db.session.get(Setting, key)
    if row is not None:
        return row.value
    return current_app.config[key.upper()]


def default_country() -> str:
    return get(DEFAULT_COUNTRY)


def set_value(key: str, value: str) -> None:
    if key not in KNOWN:
        raise DomainError(_("Unknown setting %(key)s.", key=key))
    if key == DEFAULT_COUNTRY:
        value = value.strip().upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise DomainError(_("Not a country code phone numbers know (e.g. NP, KE, BD)."))
    if key == KOBO_ALLOWED_HOSTS:
        try:
            value = ", ".join(sorted(outbound.host_entries(value)))
        except outbound.Refused as exc:
            raise DomainError(str(exc)) from None
        if len(value) > 2000:
            raise DomainError(_("Name fewer servers."))
    row = db.session.get(Setting, key)
    old = None if row is None else row.value
    if key in SECRETS:
        # Encrypted at rest; the audit entry says that it changed, never what it is.
        if old is not None and value == (crypto.decrypt(old) if old else ""):
            return
        stored = crypto.encrypt(value) if value else ""
        shown = {
            "key": key,
            "from": "set" if old else "not set",
            "to": "set" if value else "not set",
        }
    else:
        stored = value
        shown = {"key": key, "from": old, "to": value}
    if row is None:
        db.session.add(Setting(key=key, value=stored))
    else:
        row.value = stored
    db.session.flush()
    if old != stored:
        events.settings_changed.send(
            key,
            action="settings.changed",
            summary=f"Setting {key} changed",
            data=shown,
        )

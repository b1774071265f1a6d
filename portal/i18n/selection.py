"""Which language a request is served in.

A vendor's phone pages follow the vendor's choice, staff pages the signed-in user's preference,
and a page nobody is signed in to the browser's ``Accept-Language``; English when none of
these names a language the pages are written in. Outside a request (a job) it is English:
messages to beneficiaries name their language explicitly (``portal.messages``).
"""

from __future__ import annotations

from flask import has_request_context, request
from flask_login import current_user

from portal.i18n.locales import DEFAULT, PAGE_LOCALES

VENDOR_BLUEPRINT = "vendor"


def select_locale() -> str:
    if not has_request_context():
        return DEFAULT
    chosen = _chosen()
    if chosen in PAGE_LOCALES:
        return chosen
    return request.accept_languages.best_match(PAGE_LOCALES) or DEFAULT


def choose_now() -> None:
    """Choose the request's language at its start, while the signed-in user is loaded: a
    streamed body (an export) writes after the view's commit, when reading the user again is
    not allowed, and Flask-Babel keeps the choice for the rest of the request."""
    from flask_babel import get_locale

    if request.endpoint != "static":  # a file needs no language (and no user loaded for it)
        get_locale()


def _chosen() -> str | None:
    if request.blueprint == VENDOR_BLUEPRINT:
        from portal.vendor_portal.sessions import current_vendor

        vendor = current_vendor()
        return vendor.locale if vendor is not None else None
    if current_user and current_user.is_authenticated:
        return getattr(current_user, "locale", None)
    return None


def text_direction() -> str:
    """``rtl`` or ``ltr`` for the ``dir`` attribute of the page."""
    from flask_babel import get_locale

    locale = get_locale()
    return locale.text_direction if locale is not None else "ltr"

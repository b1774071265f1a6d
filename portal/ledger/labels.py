"""The words staff read for the codes the money pages show: an approval's status, a project's
payment set-up, a transaction's status, a statement line's state, a person's money history.

The codes stay in the database, the URLs and the ``data-status`` attributes (scripts and tests
read them); pages show ``money_label(table, code)``, in the page's language: the table's own
word where the context needs one, else the status vocabulary's (``status_label``), so a new
status is never hidden.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.i18n.locales import DEFAULT, to_native_digits
from portal.i18n.statuses import status_label

# Words that differ from the one status vocabulary (``portal.i18n.statuses``) in their context:
# a payment set-up that is "deployed" reads "ready", the spending limits name actions, an alert
# names its kind, a redemption's filter options start with a capital. Every other code of a
# table reads as ``status_label`` says it, so one status has one word on every page.
TABLES = {
    # A project's payment set-up (ProjectChain.status).
    "setup": {
        "deployed": _l("ready"),
        "deploying": _l("setting up"),
        "not_deployed": _l("not set up"),
        "failed": _l("failed"),
    },
    # The operator's spending limits, by action (contracts.CAP_ACTIONS).
    "cap": {
        "allocate": _l("Allocate"),
        "redeem": _l("Redeem"),
        "settle": _l("Settle"),
    },
    # The Transactions page's "stuck" filter.
    "tx": {"stuck": _l("not mined for long")},
    "alert": {
        "deep_rollback": _l("deep rollback"),
        "nonce_gap": _l("nonce gap"),
        "fee_ceiling": _l("fee ceiling"),
        "chain_mismatch": _l("chain mismatch"),
        "vendor_registration": _l("vendor registration"),
    },
    "redemption": {
        "awaiting_code": _l("Awaiting code"),
        "accepted": _l("Accepted"),
        "submitted": _l("Submitted"),
        "settled": _l("Settled"),
        "failed": _l("Failed"),
        "cancelled": _l("Cancelled"),
        "expired": _l("Expired"),
        "locked": _l("Locked"),
    },
}
# The codes of each table the scripts are given whole (``table``), beyond its own words.
CODES = {
    "approval": ("pending", "approved", "rejected", "cancelled", "executed"),
    "tx": ("pending", "sent", "confirmed", "reverted", "failed", "stuck"),
}


def label(table: str, code: str | None) -> str:
    """The words for ``code`` as ``table``'s pages show it, in the page's language: the table's
    own word if it has one, else the status vocabulary's (the code itself if unknown)."""
    if code is None:
        return ""
    found = TABLES.get(table, {}).get(code)
    return str(found) if found is not None else status_label(code)


def table(name: str) -> dict[str, str]:
    """A whole table as plain strings, for the scripts' strings block."""
    codes = CODES.get(name) or tuple(TABLES[name])
    return {code: label(name, code) for code in codes}


def hours_minutes(value: datetime | None) -> str:
    """A time of day as a table's second line shows it (``10:05``), in the page's digits."""
    if value is None:
        return ""
    locale = get_locale()
    return to_native_digits(value.strftime("%H:%M"), str(locale) if locale else DEFAULT)


# How a statement line was resolved is kept as the English words it was written with (rows
# from before the pages spoke other languages read the same way): shown in the page's language.
_RESOLUTIONS = {
    "matched by hand: ": lambda reason: _("matched by hand: %(reason)s", reason=reason),
    "set aside: ": lambda reason: _("set aside: %(reason)s", reason=reason),
}


def resolution(text: str | None) -> str:
    """A statement line's resolution in the page's language; unknown wording as it is."""
    for prefix, words in _RESOLUTIONS.items():
        if text and text.startswith(prefix):
            return words(text[len(prefix) :])
    return text or ""

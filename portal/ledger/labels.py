"""The words staff read for the codes the money pages show: an approval's status, a project's
payment set-up, a transaction's status, a statement line's state.

The codes stay in the database, the URLs and the ``data-status`` attributes (scripts and tests
read them); pages show ``money_label(table, code)``, in the page's language. A code missing from
its table is shown as it is, so a new status is never hidden.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.i18n.locales import DEFAULT, to_native_digits

TABLES = {
    "approval": {
        "pending": _l("pending"),
        "approved": _l("approved"),
        "rejected": _l("rejected"),
        "cancelled": _l("cancelled"),
        "executed": _l("executed"),
    },
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
    # A chain transaction's status, and the Transactions page's "stuck" filter.
    "tx": {
        "pending": _l("pending"),
        "sent": _l("sent"),
        "confirmed": _l("confirmed"),
        "reverted": _l("reverted"),
        "failed": _l("failed"),
        "stuck": _l("not mined for long"),
    },
    "alert": {
        "deep_rollback": _l("deep rollback"),
        "nonce_gap": _l("nonce gap"),
        "fee_ceiling": _l("fee ceiling"),
        "chain_mismatch": _l("chain mismatch"),
        "vendor_registration": _l("vendor registration"),
    },
    "job": {
        "queued": _l("queued"),
        "running": _l("running"),
        "succeeded": _l("succeeded"),
        "retrying": _l("retrying"),
        "failed": _l("failed"),
        "cancelled": _l("cancelled"),
    },
    # A person in a disbursement (disbursements.recipients).
    "recipient": {
        "allocated": _l("allocated"),
        "pending": _l("pending"),
        "failed": _l("failed"),
        "not started": _l("not started"),
    },
    # A row of a beneficiary's money history (ledger.people): a batch's or a payment's status.
    "history": {
        "confirmed": _l("confirmed"),
        "pending": _l("pending"),
        "sent": _l("sent"),
        "failed": _l("failed"),
        "awaiting_code": _l("awaiting code"),
        "accepted": _l("accepted"),
        "submitted": _l("submitted"),
        "settled": _l("settled"),
        "cancelled": _l("cancelled"),
        "expired": _l("expired"),
        "locked": _l("locked"),
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
    # A bank statement line (reconciliation.models.STATES).
    "line": {
        "matched": _l("matched"),
        "unexpected": _l("unexpected"),
        "duplicate": _l("duplicate"),
        "amount_differs": _l("amount differs"),
        "not_paid": _l("not paid"),
    },
}


def label(table: str, code: str | None) -> str:
    """The words for ``code`` in ``table``, in the page's language; the code itself if unknown."""
    if code is None:
        return ""
    found = TABLES.get(table, {}).get(code)
    return str(found) if found is not None else str(code)


def table(name: str) -> dict[str, str]:
    """A whole table as plain strings, for the scripts' strings block."""
    return {code: str(words) for code, words in TABLES[name].items()}


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

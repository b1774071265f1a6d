"""Status codes in words: the badge on a page shows ``status_label("confirmed")``, never the code.

Codes stay English in the database, the URLs and the ``data-status`` attributes scripts read;
the label is a marked string, so it follows the page's language. A code nobody named here yet
is shown with its underscores as spaces (a new status reads, untranslated, rather than breaks).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

LABELS = {
    "accepted": _l("accepted"),
    "active": _l("active"),
    "allocated": _l("allocated"),
    "amount_differs": _l("amount differs"),
    "analysing": _l("analysing"),
    "approved": _l("approved"),
    "assigned": _l("assigned"),
    "awaiting": _l("awaiting"),
    "awaiting_code": _l("awaiting code"),
    "cancelled": _l("cancelled"),
    "closed": _l("closed"),
    "committed": _l("committed"),
    "committing": _l("committing"),
    "confirmed": _l("confirmed"),
    "delivered": _l("delivered"),
    "discarded": _l("discarded"),
    "draft": _l("draft"),
    "duplicate": _l("duplicate"),
    "executed": _l("executed"),
    "expired": _l("expired"),
    "failed": _l("failed"),
    "finished": _l("finished"),
    "held": _l("held"),
    "in_progress": _l("in progress"),
    "inactive": _l("inactive"),
    "locked": _l("locked"),
    "matched": _l("matched"),
    "new": _l("new"),
    "not_paid": _l("not paid"),
    "not started": _l("not started"),  # a person a disbursement has not reached yet
    "open": _l("open"),
    "opted_out": _l("opted out"),
    "paid": _l("paid"),
    "paused": _l("paused"),
    "payout_failed": _l("payout failed"),
    "payout_sent": _l("payout sent"),
    "pending": _l("pending"),
    "queued": _l("queued"),
    "ready": _l("ready"),
    "reconciled": _l("reconciled"),
    "rejected": _l("rejected"),
    "requested": _l("requested"),
    "resolved": _l("resolved"),
    "retrying": _l("retrying"),
    "reverted": _l("reverted"),
    "review": _l("review"),
    "revoked": _l("revoked"),
    "running": _l("running"),
    "scheduled": _l("scheduled"),
    "sending": _l("sending"),
    "sent": _l("sent"),
    "settled": _l("settled"),
    "settled_on_chain": _l("settled on chain"),
    "stuck": _l("stuck"),
    "submitted": _l("submitted"),
    "succeeded": _l("succeeded"),
    "suspended": _l("suspended"),
    "unexpected": _l("unexpected"),
    "uploaded": _l("uploaded"),
    "used": _l("used"),
}


def status_label(code: str | None) -> str:
    """The status in the page's language: ``status_label("in_progress")`` → "in progress"."""
    if not code:
        return ""
    label = LABELS.get(code)
    return str(label) if label is not None else code.replace("_", " ")

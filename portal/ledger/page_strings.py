"""The words the money pages' scripts write (approvals.js, chain.js, disbursements.js), for the
staff layout's ``#i18n-strings`` block (``portal.i18n.js_strings``).

Placeholders are written ``{name}`` for ``PortalStrings.t``; the sentences are the templates'
own, so a page reads the same before and after a live update.
"""

from __future__ import annotations

from flask_babel import gettext as _

from portal.ledger import labels


def strings() -> dict:
    return {
        "approval_labels": labels.table("approval"),
        "tx_labels": labels.table("tx"),
        "approval_started": _("Approved and started."),
        "approval_no_longer": _("No longer waiting: %(status)s.", status="{status}"),
        "disbursement_progress": _(
            "%(done)s of %(num)s people confirmed (%(percent)s%%)",
            done="{done}",
            num="{num}",
            percent="{percent}",
        ),
        "disbursement_batches": _("%(done)s of %(num)s batches", done="{done}", num="{num}"),
        "disbursement_failed": _("%(num)s failed", num="{num}"),
        "just_now": _("just now"),
    }

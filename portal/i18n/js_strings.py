"""The words the phone pages' scripts write, in the page's language.

The page carries them as a JSON data block (``templates/vendor/base.html``), so the scripts
stay static files and the strings go through the same catalogs as the templates. Live states
pushed by a worker carry English labels (a worker has no page language): the scripts show the
label for the state's status from here instead.
"""

from __future__ import annotations

from flask_babel import gettext as _


def catalog() -> dict:
    from portal.redemptions import live as redemption_live
    from portal.settlements.models import LABELS as SETTLEMENT_LABELS

    return {
        "scan_read": _("Card read (…%(last)s). Now enter the amount.", last="{last}"),
        "scan_not_card": _("That is not a beneficiary card. Try again."),
        "scan_starting": _("Starting the camera…"),
        "scan_hold": _("Hold the card's square code inside the frame."),
        "scan_no_camera": _(
            "The camera cannot be used here. Type the beneficiary's phone number instead."
        ),
        "redemption_labels": {k: str(v) for k, v in redemption_live.LABELS.items()},
        "redemption_notes": {k: str(v) for k, v in redemption_live.VENDOR_NOTES.items()},
        "settlement_labels": {k: str(v) for k, v in SETTLEMENT_LABELS.items()},
        **_comms(),
    }


def _comms() -> dict:
    """Campaign progress and grievance lists (static/js/campaigns.js, grievances.js)."""
    from portal.campaigns.forms import CAMPAIGN_STATUS_LABELS
    from portal.grievances.models import STATUS_LABELS as GRIEVANCE_LABELS

    return {
        "campaign_labels": {k: str(v) for k, v in CAMPAIGN_STATUS_LABELS.items()},
        "campaign_handled": _(
            "%(done)s of %(total)s messages handled, %(delivered)s delivered",
            done="{done}",
            total="{total}",
            delivered="{delivered}",
        ),
        "grievance_labels": {k: str(v) for k, v in GRIEVANCE_LABELS.items()},
    }

"""The words the pages' scripts write, in the page's language.

The page carries them as a JSON data block (``templates/vendor/base.html`` for the phone pages,
``templates/base.html`` for the staff pages), so the scripts stay static files and the strings
go through the same catalogs as the templates. Live states
pushed by a worker carry English labels (a worker has no page language): the scripts show the
label for the state's status from here instead.
"""

from __future__ import annotations

from flask_babel import gettext as _

from portal.i18n import js_people


def catalog() -> dict:
    from portal.dashboard.display import QUEUE_WORDS
    from portal.i18n.statuses import LABELS as STATUS_LABELS
    from portal.jobs import problems
    from portal.jobs.models import STATUS_LABELS as JOB_LABELS
    from portal.ledger import page_strings as money_pages
    from portal.payouts.models import BOOKS_LABELS
    from portal.payouts.models import STATUS_LABELS as PAYOUT_LABELS
    from portal.redemptions import live as redemption_live
    from portal.settlements import live as settlement_live
    from portal.settlements.models import LABELS as SETTLEMENT_LABELS
    from portal.settlements.models import STAFF_LABELS as SETTLEMENT_STAFF_LABELS

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
        "settlement_staff_labels": {k: str(v) for k, v in SETTLEMENT_STAFF_LABELS.items()},
        # A failed payout's note by its code, "{amount}" filled in by the script.
        "settlement_notes": {
            k: str(v) % {"amount": "{amount}"} for k, v in settlement_live.VENDOR_NOTES.items()
        },
        "settlement_staff_notes": {
            k: str(v) % {"amount": "{amount}"} for k, v in settlement_live.STAFF_NOTES.items()
        },
        "payout_labels": {k: str(v) for k, v in PAYOUT_LABELS.items()},
        "payout_books": {k: str(v) for k, v in BOOKS_LABELS.items()},
        "job_labels": {k: str(v) for k, v in JOB_LABELS.items()},
        # A job's problem sentence by its code, "{ref}" filled in by the script.
        "job_problems": {
            code: problems.render(problems.coded(code, ref="{ref}")) for code in problems.SENTENCES
        },
        "job_none": _("Nothing."),
        "job_not_tried": _("Not tried yet."),
        **_staff(),
        **_comms(),
        **money_pages.strings(),
        **js_people.catalog(),
        "status_labels": {k: str(v) for k, v in STATUS_LABELS.items()},
        "queue_labels": {k: str(v) for k, v in QUEUE_WORDS.items()},
    }


def _staff() -> dict:
    """The staff layout's live connection, job toasts and the live dashboard."""
    return {
        "live_title": _("Live updates: %(state)s", state="{state}"),
        "live_connected": _("connected"),
        "live_reconnecting": _("reconnecting"),
        "live_offline": _("offline, retrying"),
        "job_toast": _("%(job)s #%(id)s: %(status)s", job="{job}", id="{id}", status="{status}"),
        "dash_live": _("live"),
        "dash_offline": _("offline"),
        "dash_reconnecting": _("reconnecting…"),
        "dash_full_screen": _("Full screen"),
        "dash_exit_full_screen": _("Exit full screen"),
        "dash_no_redemptions": _("No redemptions yet."),
        "dash_no_vendor": _("No vendor has redeemed yet."),
        "dash_none": _("None."),
        "dash_vendor_pending": _("(%(num)s pending)", num="{num}"),
        "dash_amount_pending": _("+%(amount)s pending", amount="{amount}"),
        "dash_per_minute": _("per minute"),
        "dash_running_total": _("running total"),
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

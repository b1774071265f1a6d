"""The words the phone pages' scripts write, in the page's language.

The page carries them as a JSON data block (``templates/vendor/base.html``), so the scripts
stay static files and the strings go through the same catalogs as the templates. Live states
pushed by a worker carry English labels (a worker has no page language): the scripts show the
label for the state's status from here instead.
"""

from __future__ import annotations

from flask_babel import gettext as _


def catalog() -> dict:
    from flask_babel import get_locale

    from portal.i18n.locales import DEFAULT, native_digits
    from portal.jobs import problems
    from portal.jobs.models import STATUS_LABELS as JOB_LABELS
    from portal.payouts.models import BOOKS_LABELS
    from portal.payouts.models import STATUS_LABELS as PAYOUT_LABELS
    from portal.redemptions import live as redemption_live
    from portal.settlements import live as settlement_live
    from portal.settlements.models import LABELS as SETTLEMENT_LABELS
    from portal.settlements.models import STAFF_LABELS as SETTLEMENT_STAFF_LABELS

    locale = get_locale()
    return {
        # The page's ten digits, for counts a script writes (Devanagari in Nepali).
        "digits": native_digits(str(locale) if locale is not None else DEFAULT),
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
    }

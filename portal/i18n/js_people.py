"""The words the people pages' scripts write (the beneficiary list's selection, an import's
progress, a group's card printing), in the page's language; ``js_strings.catalog`` adds them.

Counts stand after a colon ("Rows checked: 1,204") so one string serves every plural form.
"""

from __future__ import annotations

from flask_babel import get_locale
from flask_babel import gettext as _

from portal.i18n.locales import DEFAULT, native_digits


def catalog() -> dict:
    locale = get_locale()
    return {
        # The digits a script writes numbers in (static/js/i18n.js PortalStrings.number).
        "digits": native_digits(str(locale) if locale is not None else DEFAULT),
        "selection_none": _("Choose people with the boxes below."),
        "selection_count": _("People chosen: %(count)s", count="{count}"),
        "selection_empty": _("Choose at least one person first."),
        "import_checking": _("Checking rows: %(rows)s", rows="{rows}"),
        "import_checked": _("Rows checked: %(rows)s", rows="{rows}"),
        "import_saving": _("Saving rows: %(rows)s", rows="{rows}"),
        "import_saved": _("Rows saved: %(rows)s", rows="{rows}"),
        "import_pull_failed": _("The pull failed: %(problem)s", problem="{problem}"),
        "cards_none_issued": _("No cards were issued."),
        "cards_saving": _("Saving the PDF…"),
        "cards_progress": _("Cards: %(done)s of %(total)s", done="{done}", total="{total}"),
    }

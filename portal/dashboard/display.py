"""The dashboard in the reader's language.

The snapshot is built once for every screen (``shared``), so its amounts are written the
portal's one way (``AMOUNT_LOCALE``) and its labels are codes. Each reader's page writes them
again in the page's language: the page itself here, from the integer amounts the snapshot
carries, and pushed snapshots in the browser (``static/js/dashboard.js``), from the digits and
grouping this module hands the page.
"""

from __future__ import annotations

import copy

from portal.i18n import locales
from portal.i18n.formatting import page_code
from portal.jobs.kinds import QUEUE_LABELS
from portal.money import amounts

# The job queues as the pipeline table names them: the jobs pages' words.
QUEUE_WORDS = QUEUE_LABELS


def queue_label(queue: str, fallback: str | None = None) -> str:
    word = QUEUE_WORDS.get(queue)
    return str(word) if word is not None else (fallback or queue)


def number_format() -> dict:
    """How the page writes figures, for the script that redraws pushed snapshots: its ten
    digits and its grouping of amounts (``western`` 1,234,567 or ``indian`` 12,34,567)."""
    grouping, _digits = amounts.LOCALES[amounts.default_locale()]
    return {"digits": locales.native_digits(page_code()), "grouping": grouping}


def for_reader(snapshot: dict) -> dict:
    """A copy of ``snapshot`` with every amount written in the page's language."""
    shown = copy.deepcopy(snapshot)
    decimals = shown.get("decimals") or 0

    def money(base) -> str:
        return amounts.format(int(base or 0), decimals)

    totals = shown.get("totals") or {}
    shown["display"] = {key: money(value) for key, value in totals.items() if key != "revoked"}
    for row in shown.get("vendors") or ():
        row["amount_display"] = money(row.get("amount"))
        row["pending_display"] = money(row.get("pending_amount"))
    for row in shown.get("feed") or ():
        row["amount_display"] = money(row.get("amount"))
    return shown

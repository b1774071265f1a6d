"""Balance by SMS: which words ask for it, and the reply in the person's language.

A message asks for the balance when, once case, spaces, punctuation and the invisible joiners
of Devanagari typing are set aside, it is one of ``BALANCE_WORDS`` and nothing else ("bal",
" B A L ", "Balance!", "ब्यालेन्स", "बाँकी"). Anything longer is a message for staff (a
grievance): a person who writes a sentence wants to be heard, not answered by a machine.

``balance_reply`` is the one place the reply's words live until the message templates per
language take it over.
"""

from __future__ import annotations

import unicodedata

from sqlalchemy import select

from portal.beneficiaries.services import project_ids_of
from portal.chain.models import ProjectChain
from portal.disbursements.models import Entitlement
from portal.extensions import db
from portal.money import amounts
from portal.projects.models import Project

# Latin: the English word and its short form, and Nepali written in Latin letters.
_LATIN = ("bal", "balance", "blnc", "baki", "baaki", "byalens", "byalence", "maujdat")
# Devanagari: the English loan word as Nepali writes it (with ा/ै and न्स/ंस spellings), the
# banking word "मौज्दात" (balance), and "बाँकी" ("what is left").
_DEVANAGARI = (
    "ब्यालेन्स",
    "ब्यालेंस",
    "ब्यालन्स",
    "बैलेन्स",
    "बैलेंस",
    "बेलेन्स",
    "मौज्दात",
    "बाँकी",
    "बाकी",
)
# Zero-width joiners that keyboards insert around the virama; they change no letter.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_CANDRABINDU, _ANUSVARA = "\u0901", "\u0902"


def normalise(text: str) -> str:
    """The message reduced to the letters that decide what it asks: compatibility forms
    folded (full-width Latin), case folded, joiners, spaces and punctuation dropped, and
    candrabindu written as anusvara (phones type either for the same nasal)."""
    folded = unicodedata.normalize("NFKC", text or "").translate(_INVISIBLE).casefold()
    kept = "".join(ch for ch in folded if unicodedata.category(ch)[0] in ("L", "M", "N"))
    return kept.replace(_CANDRABINDU, _ANUSVARA)


BALANCE_WORDS = frozenset(normalise(word) for word in _LATIN + _DEVANAGARI)


def asks_balance(text: str) -> bool:
    return normalise(text) in BALANCE_WORDS


_WORDS = {
    "en": {
        "none": "You have no entitlement with us at the moment.",
        "one": "Your balance: {amount} left to spend.",
        "many": "Your balance:",
        "line": "{project}: {amount}",
    },
    "ne": {
        "none": "तपाईंको हाल कुनै सहायता रकम बाँकी छैन।",
        "one": "तपाईंको बाँकी रकम: {amount}",
        "many": "तपाईंको बाँकी रकम:",
        "line": "{project}: {amount}",
    },
}


def _entitlements(beneficiary) -> list[tuple]:
    """(project, entitlement, chain row) for each of the person's projects with an
    entitlement, by project name."""
    return db.session.execute(
        select(Project, Entitlement, ProjectChain)
        .join(Entitlement, Entitlement.project_id == Project.id)
        .outerjoin(ProjectChain, ProjectChain.project_id == Project.id)
        .where(
            Entitlement.beneficiary_id == beneficiary.id,
            Project.id.in_(project_ids_of(beneficiary)),
        )
        .order_by(Project.name, Project.id)
    ).all()


def balance_reply(beneficiary, language: str) -> str:
    """The SMS answering "BAL": what is left to spend, per project when there are several,
    in ``language`` (English when there is no text in it yet), amounts written as that
    language writes numbers."""
    words = _WORDS.get(language, _WORDS["en"])
    locale = language if language in amounts.LOCALES else "en"
    found = [
        (
            project.name,
            amounts.money(
                entitlement.remaining, pc.decimals if pc else 0, project.currency, locale
            ),
        )
        for project, entitlement, pc in _entitlements(beneficiary)
    ]
    if not found:
        return words["none"]
    if len(found) == 1:
        return words["one"].format(amount=found[0][1])
    lines = [words["line"].format(project=name, amount=amount) for name, amount in found]
    return "\n".join([words["many"], *lines])

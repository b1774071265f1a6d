"""The messages the portal sends beneficiaries, the placeholders each may use, and the default
text of each in English and Nepali (seeded into the database by migration 0025; a language with
no template of its own gets the English one).

The Nepali defaults were written for review by a native speaker (README, "Languages").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

# What each placeholder stands for, shown beside the editor.
PLACEHOLDERS = {
    "code": _l("the 6-digit payment code"),
    "amount": _l("the amount of this payment or allocation, with the currency"),
    "shop": _l("the shop's name"),
    "left": _l("what the beneficiary has left to spend, with the currency"),
    "project": _l("the project's name"),
    "minutes": _l("how many minutes the code works"),
}


@dataclass(frozen=True)
class Kind:
    name: str
    label: object
    placeholders: tuple[str, ...]
    required: tuple[str, ...] = ()
    defaults: dict[str, str] = field(default_factory=dict)


PAYMENT_CODE = Kind(
    "payment_code",
    _l("Payment code"),
    ("code", "amount", "shop", "minutes"),
    required=("code",),
    defaults={
        "en": "{code} is your code to pay {amount} at {shop}. Give it only to pay there. "
        "It expires in {minutes} minutes.",
        "ne": "{shop} मा {amount} तिर्ने तपाईंको कोड {code} हो। यो कोड त्यहीँ तिर्दा मात्र "
        "दिनुहोस्। यो {minutes} मिनेटमा सकिन्छ।",
    },
)
PAYMENT_SHORT = Kind(
    "payment_short",
    _l("Payment refused: not enough left"),
    ("amount", "shop", "left"),
    defaults={
        "en": "{shop} asked you to pay {amount}, but you have {left} left. No code was sent "
        "and nothing was taken.",
        "ne": "{shop} ले तपाईंसँग {amount} माग्यो, तर तपाईंसँग {left} मात्र बाँकी छ। कुनै "
        "कोड पठाइएन र केही पनि काटिएन।",
    },
)
ALLOCATION = Kind(
    "allocation",
    _l("Allocation notice"),
    ("amount", "project", "left"),
    defaults={
        "en": "You have received {amount} from {project}. You now have {left} to spend at "
        "approved shops. Share a payment code only to pay.",
        "ne": "तपाईंले {project} बाट {amount} पाउनुभयो। अब स्वीकृत पसलहरूमा खर्च गर्न "
        "तपाईंसँग {left} छ। भुक्तानी गर्दा मात्र कोड दिनुहोस्।",
    },
)
RECEIPT = Kind(
    "receipt",
    _l("Receipt after a payment"),
    ("amount", "shop", "left", "project"),
    defaults={
        "en": "You paid {amount} at {shop}. You have {left} left in {project}.",
        "ne": "तपाईंले {shop} मा {amount} तिर्नुभयो। {project} मा तपाईंसँग {left} बाँकी छ।",
    },
)
BALANCE = Kind(
    "balance",
    _l("Balance reply"),
    ("left", "project"),
    defaults={
        "en": "You have {left} left to spend in {project}.",
        "ne": "{project} मा खर्च गर्न तपाईंसँग {left} बाँकी छ।",
    },
)

KINDS = {kind.name: kind for kind in (PAYMENT_CODE, PAYMENT_SHORT, ALLOCATION, RECEIPT, BALANCE)}
# Examples for the preview, as the SMS would carry them.
SAMPLE = {
    "code": "482913",
    "amount": 150050,
    "shop": "Sharma Kirana Pasal",
    "left": 349950,
    "project": "Winter cash 2026",
    "minutes": 5,
}

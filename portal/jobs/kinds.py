"""Names of the kinds of background job and the queue each runs on.

Services enqueue by kind name; ``workers`` binds a handler to each kind. Keeping the table here
lets the web process send messages without importing any worker code.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

# "campaigns": campaign messages, so that a campaign of thousands never delays a payment code
# waiting on "comms" (both share the provider's rate, ``portal.comms.ratelimit``).
QUEUES = ("default", "imports", "contracts", "comms", "reports", "campaigns")
# What each queue is called on pages: "contracts" is the queue's name on the broker, not a word
# for programme staff.
QUEUE_LABELS = {
    "default": _l("general"),
    "imports": _l("imports"),
    "contracts": _l("payments"),
    "comms": _l("messages"),
    "reports": _l("reports"),
    "campaigns": _l("campaigns"),
}


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: str
    label: str  # a lazy string: the page's language when shown
    max_attempts: int | None = None  # None: the configured default


KINDS: dict[str, JobKind] = {}


def register_kind(name: str, queue: str, label: str, max_attempts: int | None = None) -> JobKind:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    kind = JobKind(name, queue, label, max_attempts)
    KINDS[name] = kind
    return kind


DIAGNOSTIC = register_kind("system.diagnostic", "default", _l("Pipeline check"))
IMPORT_ANALYSE = register_kind("imports.analyse", "imports", _l("Import dry run"), max_attempts=3)
IMPORT_COMMIT = register_kind("imports.commit", "imports", _l("Import commit"), max_attempts=3)
KOBO_PULL = register_kind("imports.kobo_pull", "imports", _l("KoboToolbox pull"), max_attempts=5)
CARDS_PDF = register_kind("cards.pdf", "reports", _l("Beneficiary cards PDF"), max_attempts=3)
CHAIN_CONFIRM = register_kind(
    "chain.confirm", "contracts", _l("Transaction follow-up"), max_attempts=8
)
CHAIN_DEPLOY = register_kind(
    "chain.deploy", "contracts", _l("Set up project payments"), max_attempts=5
)
CHAIN_FUND = register_kind("chain.fund", "contracts", _l("Fund project"), max_attempts=5)
CHAIN_MINT_WATCH = register_kind(
    "chain.mint_watch", "contracts", _l("Wait for the treasury's funding"), max_attempts=5
)
CHAIN_VENDOR_SYNC = register_kind(
    "chain.vendor_sync", "contracts", _l("Vendor registration for payments"), max_attempts=8
)
CHAIN_SETTLE = register_kind("chain.settle", "contracts", _l("Vendor settlement"), max_attempts=5)
CHAIN_LEDGER_VERIFY = register_kind(
    "chain.ledger_verify", "reports", _l("Ledger check"), max_attempts=2
)
DISBURSEMENT_BATCH = register_kind(
    "disbursement.batch", "contracts", _l("Disbursement batch"), max_attempts=5
)
COMMS_SMS = register_kind("comms.sms", "comms", _l("SMS"), max_attempts=6)
COMMS_EMAIL = register_kind("comms.email", "comms", _l("Email"), max_attempts=6)
# A "forgot password" request: looks the address up and emails a link when it has an account.
ACCOUNTS_PASSWORD_RESET = register_kind(
    "accounts.password_reset", "comms", _l("Password reset request"), max_attempts=3
)
REDEMPTION_TRANSFER = register_kind(
    "redemptions.transfer", "contracts", _l("Redemption transfer"), max_attempts=5
)
PAYOUT_SEND = register_kind("payouts.send", "comms", _l("Mobile-money payout"), max_attempts=6)
PAYOUT_CHECK = register_kind("payouts.check", "comms", _l("Payout status check"), max_attempts=4)
MESSAGES_ALLOCATION = register_kind(
    "messages.allocation_notices",
    "comms",
    _l("Allocation notices to beneficiaries"),
    max_attempts=6,
)
COMMS_WHATSAPP = register_kind("comms.whatsapp", "comms", _l("WhatsApp message"), max_attempts=6)
CAMPAIGN_START = register_kind("campaigns.start", "campaigns", _l("Campaign start"), max_attempts=5)
CAMPAIGN_SMS = register_kind("campaigns.sms", "campaigns", _l("Campaign SMS"), max_attempts=6)
CAMPAIGN_WHATSAPP = register_kind(
    "campaigns.whatsapp", "campaigns", _l("Campaign WhatsApp message"), max_attempts=6
)
CAMPAIGN_WATCH = register_kind(
    "campaigns.watch", "campaigns", _l("Campaign progress check"), max_attempts=3
)

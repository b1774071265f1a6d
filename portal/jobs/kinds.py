"""Names of the kinds of background job and the queue each runs on.

Services enqueue by kind name; ``workers`` binds a handler to each kind. Keeping the table here
lets the web process send messages without importing any worker code.
"""

from __future__ import annotations

from dataclasses import dataclass

# "campaigns": campaign messages, so that a campaign of thousands never delays a payment code
# waiting on "comms" (both share the provider's rate, ``portal.comms.ratelimit``).
QUEUES = ("default", "imports", "contracts", "comms", "reports", "campaigns")
# What each queue is called on pages: "contracts" is the queue's name on the broker, not a word
# for programme staff.
QUEUE_LABELS = {
    "default": "general",
    "imports": "imports",
    "contracts": "payments",
    "comms": "messages",
    "reports": "reports",
    "campaigns": "campaigns",
}


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: str
    label: str
    max_attempts: int | None = None  # None: the configured default


KINDS: dict[str, JobKind] = {}


def register_kind(name: str, queue: str, label: str, max_attempts: int | None = None) -> JobKind:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    kind = JobKind(name, queue, label, max_attempts)
    KINDS[name] = kind
    return kind


DIAGNOSTIC = register_kind("system.diagnostic", "default", "Pipeline check")
IMPORT_ANALYSE = register_kind("imports.analyse", "imports", "Import dry run", max_attempts=3)
IMPORT_COMMIT = register_kind("imports.commit", "imports", "Import commit", max_attempts=3)
KOBO_PULL = register_kind("imports.kobo_pull", "imports", "KoboToolbox pull", max_attempts=5)
CARDS_PDF = register_kind("cards.pdf", "reports", "Beneficiary cards PDF", max_attempts=3)
CHAIN_CONFIRM = register_kind("chain.confirm", "contracts", "Transaction follow-up", max_attempts=8)
CHAIN_DEPLOY = register_kind("chain.deploy", "contracts", "Set up project payments", max_attempts=5)
CHAIN_FUND = register_kind("chain.fund", "contracts", "Fund project", max_attempts=5)
CHAIN_MINT_WATCH = register_kind(
    "chain.mint_watch", "contracts", "Wait for the treasury's funding", max_attempts=5
)
CHAIN_VENDOR_SYNC = register_kind(
    "chain.vendor_sync", "contracts", "Vendor registration for payments", max_attempts=8
)
CHAIN_SETTLE = register_kind("chain.settle", "contracts", "Vendor settlement", max_attempts=5)
CHAIN_LEDGER_VERIFY = register_kind(
    "chain.ledger_verify", "reports", "Ledger check", max_attempts=2
)
DISBURSEMENT_BATCH = register_kind(
    "disbursement.batch", "contracts", "Disbursement batch", max_attempts=5
)
COMMS_SMS = register_kind("comms.sms", "comms", "SMS", max_attempts=6)
COMMS_EMAIL = register_kind("comms.email", "comms", "Email", max_attempts=6)
# A "forgot password" request: looks the address up and emails a link when it has an account.
ACCOUNTS_PASSWORD_RESET = register_kind(
    "accounts.password_reset", "comms", "Password reset request", max_attempts=3
)
REDEMPTION_TRANSFER = register_kind(
    "redemptions.transfer", "contracts", "Redemption transfer", max_attempts=5
)
PAYOUT_SEND = register_kind("payouts.send", "comms", "Mobile-money payout", max_attempts=6)
PAYOUT_CHECK = register_kind("payouts.check", "comms", "Payout status check", max_attempts=4)
MESSAGES_ALLOCATION = register_kind(
    "messages.allocation_notices", "comms", "Allocation notices to beneficiaries", max_attempts=6
)
COMMS_WHATSAPP = register_kind("comms.whatsapp", "comms", "WhatsApp message", max_attempts=6)
CAMPAIGN_START = register_kind("campaigns.start", "campaigns", "Campaign start", max_attempts=5)
CAMPAIGN_SMS = register_kind("campaigns.sms", "campaigns", "Campaign SMS", max_attempts=6)
CAMPAIGN_WHATSAPP = register_kind(
    "campaigns.whatsapp", "campaigns", "Campaign WhatsApp message", max_attempts=6
)
CAMPAIGN_WATCH = register_kind(
    "campaigns.watch", "campaigns", "Campaign progress check", max_attempts=3
)

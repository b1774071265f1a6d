"""Every permission the portal checks, named per action, and the roles seeded at install.

Roles live in the database and are edited at runtime; this module only names what can be granted.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

# The label of each, as the role form shows it (translated when shown).
PERMISSIONS: dict[str, str] = {
    "project.read": _l("See projects the user is a member of"),
    "project.manage": _l("Create and edit projects, change their status and members"),
    "beneficiary.read": _l("See beneficiary records (personal data masked)"),
    "beneficiary.pii.read": _l("See beneficiaries' personal data unmasked"),
    "beneficiary.manage": _l("Create and edit beneficiaries and groups, assign them to projects"),
    "beneficiary.export": _l(
        "Export beneficiary lists to CSV and XLSX (personal data only with PII)"
    ),
    "card.manage": _l("Issue, revoke and print beneficiary cards (printing reissues them)"),
    "vendor.read": _l("See vendors"),
    "vendor.manage": _l("Register and edit vendors, assign them to projects"),
    "vendor.approve": _l("Approve and suspend vendors"),
    "chain.read": _l("See a project's funding and payment set-up"),
    "chain.manage": _l("Set up a project's payments and ask to fund it"),
    "chain.pause": _l("Pause and resume the movement of money in a project (the guardian)"),
    "chain.caps": _l(
        "Change the spending limits of the portal's payment account (treasury-signed)"
    ),
    "disbursement.manage": _l("Create and start disbursements, retry failed batches"),
    "funding.approve": _l("Approve or reject another person's request to fund a project"),
    "disbursement.approve": _l(
        "Approve or reject another person's request to start a disbursement"
    ),
    "settlement.approve": _l("Approve or reject another person's vendor settlement"),
    "settlement.read": _l("See vendors' settlements (cash-outs) and their trail"),
    "settlement.manage": _l(
        "Open settlement runs, retry or close a settlement whose payout failed"
    ),
    "dashboard.read": _l("Watch a project's live distribution dashboard"),
    "redemption.read": _l("See a project's redemptions, export them, and print vendor statements"),
    "job.read": _l("See background jobs"),
    "job.retry": _l("Retry failed jobs and run diagnostic jobs"),
    "job.cancel": _l("Cancel queued jobs"),
    "audit.read": _l("Read the audit log"),
    "user.manage": _l("Invite and edit staff accounts"),
    "role.manage": _l("Create roles and change their permissions"),
    "settings.manage": _l("Change runtime settings"),
    "payout.read": _l("See vendors' payouts, payout batches and statements"),
    "payout.manage": _l("Pay vendors out: build bank batches, mark them sent, upload statements"),
    "payout.override": _l("Mark a payout paid or failed without a matching statement line"),
    "outbox.read": _l("Read the development SMS outbox (never available in production)"),
    "grievances.read": _l("See grievances (the description only with personal data access)"),
    "grievances.manage": _l("Record grievances, assign them, change their status and add notes"),
    "chain.details.read": _l("See on-chain details (addresses, hashes, fees) and Transactions"),
    "messages.manage": _l("Edit the messages sent to beneficiaries, in each language"),
    "campaign.read": _l("See campaigns and watch their progress"),
    "campaign.manage": _l("Compose, send, schedule, pause and cancel campaigns"),
    "message.read": _l("See the delivery log of messages (numbers masked, texts never shown)"),
    "message.manage": _l(
        "Settle messages to check in the delivery log: delivered, or not sent (sent again)"
    ),
}

# Permission that lifts the per-project scope: the holder sees every project.
ALL_PROJECTS = "project.all"
PERMISSIONS[ALL_PROJECTS] = _l(
    "See and act on every project, not only those the user is a member of"
)

SEEDED_ROLES: dict[str, tuple[str, list[str]]] = {
    "admin": ("Everything, on every project", sorted(PERMISSIONS)),
    "programme manager": (
        "Runs projects: beneficiaries, vendors, jobs",
        [
            "project.read",
            "project.manage",
            "beneficiary.read",
            "beneficiary.pii.read",
            "beneficiary.manage",
            "beneficiary.export",
            "card.manage",
            "vendor.read",
            "vendor.manage",
            "vendor.approve",
            "job.read",
            "job.retry",
            "job.cancel",
            "audit.read",
            "chain.read",
            "disbursement.manage",
            "dashboard.read",
            "redemption.read",
            "grievances.read",
            "grievances.manage",
            "messages.manage",
            "campaign.read",
            "campaign.manage",
            "message.read",
            "message.manage",
        ],
    ),
    "finance": (
        "Money side: funding, disbursements, vendors, cash-outs, jobs, audit",
        [
            "project.read",
            "beneficiary.read",
            "vendor.read",
            "job.read",
            "audit.read",
            "chain.read",
            "chain.manage",
            "disbursement.manage",
            "dashboard.read",
            "payout.read",
            "payout.manage",
            "redemption.read",
            "settlement.read",
            "settlement.manage",
            "chain.details.read",
        ],
    ),
    "finance approver": (
        "Second pair of eyes on money: approves funding, disbursements and settlements",
        [
            "project.read",
            "beneficiary.read",
            "vendor.read",
            "job.read",
            "audit.read",
            "chain.read",
            "dashboard.read",
            "funding.approve",
            "disbursement.approve",
            "settlement.approve",
            "settlement.read",
        ],
    ),
    "field agent": (
        "Enrols beneficiaries in the field",
        [
            "project.read",
            "beneficiary.read",
            "beneficiary.pii.read",
            "beneficiary.manage",
            "card.manage",
            "grievances.read",
            "grievances.manage",
        ],
    ),
    "viewer": (
        "Read-only",
        ["project.read", "beneficiary.read", "vendor.read", "job.read", "dashboard.read"],
    ),
}

"""Every permission the portal checks, named per action, and the roles seeded at install.

Roles live in the database and are edited at runtime; this module only names what can be granted.
"""

from __future__ import annotations

PERMISSIONS: dict[str, str] = {
    "project.read": "See projects the user is a member of",
    "project.manage": "Create and edit projects, change their status and members",
    "beneficiary.read": "See beneficiary records (personal data masked)",
    "beneficiary.pii.read": "See beneficiaries' personal data unmasked",
    "beneficiary.manage": "Create and edit beneficiaries and groups, assign them to projects",
    "beneficiary.export": "Export beneficiary lists to CSV and XLSX (personal data only with PII)",
    "card.manage": "Issue, revoke and print beneficiary cards (printing reissues them)",
    "vendor.read": "See vendors",
    "vendor.manage": "Register and edit vendors, assign them to projects",
    "vendor.approve": "Approve and suspend vendors",
    "chain.read": "See a project's contracts and its transactions",
    "chain.manage": "Deploy a project's contracts and fund them",
    "chain.pause": "Pause and resume a project's value moves (the guardian), with a reason",
    "chain.caps": "Change the operator's limits on a project's contract (signed by the treasury)",
    "disbursement.manage": "Create and start disbursements, retry failed batches",
    "funding.approve": "Approve or reject another person's request to fund a project (mint)",
    "disbursement.approve": "Approve or reject another person's request to start a disbursement",
    "settlement.approve": "Approve or reject another person's vendor settlement",
    "settlement.read": "See vendors' settlements (cash-outs) and their trail",
    "settlement.manage": "Open settlement runs, retry or close a settlement whose payout failed",
    "dashboard.read": "Watch a project's live distribution dashboard",
    "redemption.read": "See a project's redemptions, export them, and print vendor statements",
    "job.read": "See background jobs",
    "job.retry": "Retry failed jobs and run diagnostic jobs",
    "job.cancel": "Cancel queued jobs",
    "audit.read": "Read the audit log",
    "user.manage": "Invite and edit staff accounts",
    "role.manage": "Create roles and change their permissions",
    "settings.manage": "Change runtime settings",
    "payout.read": "See vendors' payouts, payout batches and statements",
    "payout.manage": "Pay vendors out: build bank batches, mark them sent, upload statements",
    "payout.override": "Mark a payout paid or failed without a matching statement line",
    "outbox.read": "Read the development SMS outbox (never available in production)",
    "campaign.read": "See campaigns and watch their progress",
    "campaign.manage": "Compose, send, schedule, pause and cancel campaigns",
    "message.read": "See the delivery log of messages (numbers masked, texts never shown)",
}

# Permission that lifts the per-project scope: the holder sees every project.
ALL_PROJECTS = "project.all"
PERMISSIONS[ALL_PROJECTS] = "See and act on every project, not only those the user is a member of"

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
            "campaign.read",
            "campaign.manage",
            "message.read",
        ],
    ),
    "finance": (
        "Money side: contracts, funding, disbursements, vendors, jobs, audit",
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
        ],
    ),
    "viewer": (
        "Read-only",
        ["project.read", "beneficiary.read", "vendor.read", "job.read", "dashboard.read"],
    ),
}

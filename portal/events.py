"""Domain events. Services send them after the change is flushed; listeners in each feature's
``listeners.py`` react, so a feature can follow another without the other importing it.

Listeners run inside the sender's transaction: what they write commits or rolls back with it.
Every signal is sent with the acting object as sender and keyword values that are ids or plain data.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

user_signed_in = _signals.signal("user-signed-in")
user_sign_in_failed = _signals.signal("user-sign-in-failed")
user_signed_out = _signals.signal("user-signed-out")
role_changed = _signals.signal("role-changed")
user_changed = _signals.signal("user-changed")
# An emailed account link was sent, resent, revoked or used (invitations, password resets,
# email changes); sender: the AccountLink. The token is never in the event.
account_link_changed = _signals.signal("account-link-changed")
# Two-factor sign-in set up, its recovery codes renewed, or reset by an administrator.
two_factor_changed = _signals.signal("two-factor-changed")

project_changed = _signals.signal("project-changed")
project_status_changed = _signals.signal("project-status-changed")
project_members_changed = _signals.signal("project-members-changed")

beneficiary_changed = _signals.signal("beneficiary-changed")
beneficiary_projects_changed = _signals.signal("beneficiary-projects-changed")
group_changed = _signals.signal("group-changed")
import_changed = _signals.signal("import-changed")
card_changed = _signals.signal("card-changed")
card_print_changed = _signals.signal("card-print-changed")
beneficiaries_exported = _signals.signal("beneficiaries-exported")
# Someone saw a person's personal data (their page unmasked, a card looked up): who, whom, when.
beneficiary_pii_read = _signals.signal("beneficiary-pii-read")

vendor_changed = _signals.signal("vendor-changed")
vendor_approved = _signals.signal("vendor-approved")
vendor_suspended = _signals.signal("vendor-suspended")

# A transaction's outcome takes effect: a success when it is included (then re-checked until
# final), a revert or a failure once final.
chain_tx_final = _signals.signal("chain-tx-final")
# The chain dropped an included transaction (a reorg, a node restarted from older state):
# listeners put its effects back to pending; ``was`` is the status it had.
chain_tx_undone = _signals.signal("chain-tx-undone")
# Something about the chain staff must know (a rollback deeper than finality, a nonce gap, a
# fee ceiling reached, the chain and the database disagreeing).
chain_alert = _signals.signal("chain-alert")
chain_alert_resolved = _signals.signal("chain-alert-resolved")
project_chain_changed = _signals.signal("project-chain-changed")
# A settle call took effect ("chain.settled"), was undone by the chain ("chain.settle_undone")
# or failed for good ("chain.settle_failed"); sender: the ChainSettlement. The settlement flow
# listens to move its own record (see portal/chain/settlement.py).
chain_settlement_changed = _signals.signal("chain-settlement-changed")
disbursement_changed = _signals.signal("disbursement-changed")
# Staff took the money trail away: a redemptions export or a vendor statement.
money_trail_exported = _signals.signal("money-trail-exported")

# A request for approval was made, decided, cancelled or carried out (portal/approvals).
approval_changed = _signals.signal("approval-changed")
approval_threshold_changed = _signals.signal("approval-threshold-changed")

job_retried = _signals.signal("job-retried")
job_cancelled = _signals.signal("job-cancelled")
settings_changed = _signals.signal("settings-changed")

# Vendor payouts (portal/payouts) and statements (portal/reconciliation).
payout_method_changed = _signals.signal("payout-method-changed")
payout_changed = _signals.signal("payout-changed")
payout_batch_changed = _signals.signal("payout-batch-changed")
statement_uploaded = _signals.signal("statement-uploaded")
statement_line_resolved = _signals.signal("statement-line-resolved")
# Vendors' cash-outs (portal/settlements).
settlement_changed = _signals.signal("settlement-changed")
settlement_run_opened = _signals.signal("settlement-run-opened")

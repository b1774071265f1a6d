"""The audit log hears every domain event and appends one entry for it, in the same transaction.

Every signal in ``portal.events`` has a listener here (a test holds it to that). Most senders pass
``action``, ``summary`` and ``project_id`` themselves; a chain transaction's outcome is described
here, from the transaction row.
"""

from __future__ import annotations

from portal import events
from portal.audit import services as audit


def _record(sender, *, action: str, summary: str, project_id=None, data=None, **_):
    target = sender if hasattr(sender, "__tablename__") else None
    audit.record(action, summary, target=target, project_id=project_id, data=data)


def _chain_tx_final(tx, **_):
    # Money and contracts moved (or failed to): the hash ties the entry to the chain's own record.
    audit.record(
        f"chain.tx_{tx.status}",
        f"Chain transaction {tx.id} ({tx.purpose}) {tx.status}",
        target=tx,
        project_id=tx.project_id,
        data={
            "purpose": tx.purpose,
            "ref": f"{tx.ref_type or ''}:{tx.ref_id or ''}",
            "tx_hash": tx.tx_hash,
            "block": tx.block_number,
        },
    )


def _chain_tx_undone(tx, *, was: str, deep: bool = False, **_):
    audit.record(
        "chain.tx_rolled_back",
        f"Chain transaction {tx.id} ({tx.purpose}) was {was} in a block the chain dropped"
        + (" after it was final" if deep else "")
        + "; its effects are pending again and it is sent again",
        target=tx,
        project_id=tx.project_id,
        data={"purpose": tx.purpose, "ref": f"{tx.ref_type or ''}:{tx.ref_id or ''}", "deep": deep},
    )


LISTENERS = {
    events.user_signed_in: _record,
    events.user_sign_in_failed: _record,
    events.user_signed_out: _record,
    events.user_changed: _record,
    events.account_link_changed: _record,
    events.two_factor_changed: _record,
    events.role_changed: _record,
    events.project_changed: _record,
    events.project_status_changed: _record,
    events.project_members_changed: _record,
    events.beneficiary_changed: _record,
    events.beneficiary_projects_changed: _record,
    events.beneficiary_pii_read: _record,
    events.group_changed: _record,
    events.import_changed: _record,
    events.card_changed: _record,
    events.card_print_changed: _record,
    events.beneficiaries_exported: _record,
    events.vendor_changed: _record,
    events.vendor_approved: _record,
    events.vendor_suspended: _record,
    events.chain_tx_final: _chain_tx_final,
    events.chain_tx_undone: _chain_tx_undone,
    events.chain_alert: _record,
    events.chain_alert_resolved: _record,
    events.project_chain_changed: _record,
    events.chain_settlement_changed: _record,
    events.disbursement_changed: _record,
    events.approval_changed: _record,
    events.approval_threshold_changed: _record,
    events.money_trail_exported: _record,
    events.job_retried: _record,
    events.job_cancelled: _record,
    events.settings_changed: _record,
    events.payout_method_changed: _record,
    events.payout_changed: _record,
    events.payout_batch_changed: _record,
    events.statement_uploaded: _record,
    events.statement_line_resolved: _record,
    events.settlement_changed: _record,
    events.settlement_run_opened: _record,
}


def connect() -> None:
    for signal, listener in LISTENERS.items():
        signal.connect(listener, weak=False)

"""The audit log hears every domain event and appends one entry for it, in the same transaction."""

from __future__ import annotations

from portal import events
from portal.audit import services as audit

AUDITED = (
    events.user_signed_in,
    events.user_sign_in_failed,
    events.user_signed_out,
    events.user_changed,
    events.role_changed,
    events.project_changed,
    events.project_status_changed,
    events.project_members_changed,
    events.beneficiary_changed,
    events.beneficiary_projects_changed,
    events.group_changed,
    events.import_changed,
    events.card_changed,
    events.card_print_changed,
    events.beneficiaries_exported,
    events.vendor_changed,
    events.vendor_approved,
    events.vendor_suspended,
    events.job_retried,
    events.job_cancelled,
    events.settings_changed,
)


def _record(sender, *, action: str, summary: str, project_id=None, data=None, **_):
    target = sender if hasattr(sender, "__tablename__") else None
    audit.record(action, summary, target=target, project_id=project_id, data=data)


def connect() -> None:
    for signal in AUDITED:
        signal.connect(_record, weak=False)

"""What each audit action code means, in the reader's language ("auth.signed_in" → "Signed in").

The code stays what the hash chain and the CSV export hold, and what the action filter matches;
the page shows this label beside it (the code in its tooltip). An action nobody named yet shows
its code: a new feature's entries read, untranslated, rather than vanish.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

LABELS = {
    "approval.threshold_changed": _l("Approval threshold changed"),
    "auth.failed": _l("Sign-in failed"),
    "auth.signed_in": _l("Signed in"),
    "auth.signed_out": _l("Signed out"),
    "auth.two_factor_failed": _l("Two-factor code refused"),
    "beneficiaries.exported": _l("Beneficiaries exported"),
    "beneficiary.created": _l("Beneficiary enrolled"),
    "beneficiary.pii_read": _l("Personal data read"),
    "beneficiary.project_added": _l("Beneficiary added to a project"),
    "beneficiary.project_removed": _l("Beneficiary removed from a project"),
    "beneficiary.updated": _l("Beneficiary changed"),
    "card.issued": _l("Card issued"),
    "card.revoked": _l("Card revoked"),
    "cards.downloaded": _l("Card sheet downloaded"),
    "cards.print_requested": _l("Cards asked to be printed"),
    "cards.printed": _l("Cards printed"),
    "chain.alert_resolved": _l("Payment network alert resolved"),
    "chain.caps_prepared": _l("Spending limits prepared"),
    "chain.paused": _l("Payments paused"),
    "chain.tx_confirmed": _l("Payment network step confirmed"),
    "chain.tx_failed": _l("Payment network step failed"),
    "chain.tx_reverted": _l("Payment network step refused"),
    "chain.tx_rolled_back": _l("Payment network step rolled back"),
    "chain.vendor_registered": _l("Vendor registered on the payment network"),
    "chain.vendor_retry": _l("Vendor registration retried"),
    "disbursement.recipients_exported": _l("Disbursement recipients exported"),
    "email_change.requested": _l("Email change asked for"),
    "grievance.note": _l("Grievance note added"),
    "grievance.opened": _l("Grievance recorded"),
    "grievance.status": _l("Grievance status changed"),
    "grievance.updated": _l("Grievance changed"),
    "group.created": _l("Group created"),
    "group.member_removed": _l("Removed from a group"),
    "group.members_added": _l("Added to a group"),
    "import.committed": _l("Import committed"),
    "invitation.accepted": _l("Invitation accepted"),
    "invitation.resent": _l("Invitation sent again"),
    "invitation.revoked": _l("Invitation revoked"),
    "invitation.sent": _l("Invitation sent"),
    "job.cancelled": _l("Job cancelled"),
    "job.retried": _l("Job retried"),
    "messages.template_saved": _l("Message text saved"),
    "password_reset.issued": _l("Password reset link made"),
    "payout.booked": _l("Payout booked"),
    "payout.callback": _l("Payout provider answered"),
    "payout.failed": _l("Payout failed"),
    "payout.override": _l("Payout marked by hand"),
    "payout.paid": _l("Payout paid"),
    "payout.requested": _l("Payout requested"),
    "payout.sent": _l("Payout sent"),
    "payout_batch.built": _l("Payout batch built"),
    "payout_batch.downloaded": _l("Payout batch downloaded"),
    "payout_batch.sent": _l("Payout batch sent"),
    "project.created": _l("Project created"),
    "project.members": _l("Project members changed"),
    "project.status": _l("Project status changed"),
    "project.updated": _l("Project changed"),
    "redemptions.exported": _l("Redemptions exported"),
    "role.created": _l("Role created"),
    "settings.changed": _l("Setting changed"),
    "settlement.run_opened": _l("Settlement run opened"),
    "statement.line_matched": _l("Statement line matched"),
    "statement.line_set_aside": _l("Statement line set aside"),
    "statement.uploaded": _l("Statement uploaded"),
    "two_factor.enabled": _l("Two-factor sign-in set up"),
    "two_factor.recovery_code_used": _l("Recovery code used"),
    "two_factor.recovery_codes_renewed": _l("Recovery codes renewed"),
    "two_factor.reset": _l("Two-factor sign-in reset"),
    "user.closed": _l("Account closed"),
    "user.created": _l("User created"),
    "user.email_change_undone": _l("Email change undone"),
    "user.email_changed": _l("Email changed"),
    "user.password_changed": _l("Password changed"),
    "user.password_reset": _l("Password reset"),
    "user.updated": _l("User changed"),
    "vendor.approved": _l("Vendor approved"),
    "vendor.assigned": _l("Vendor assigned to a project"),
    "vendor.registered": _l("Vendor registered"),
    "vendor.sign_in_locked": _l("Vendor sign-in locked"),
    "vendor.signed_in": _l("Vendor signed in"),
    "vendor.statement": _l("Vendor statement printed"),
    "vendor.suspended": _l("Vendor suspended"),
    "vendor.unassigned": _l("Vendor taken off a project"),
    "vendor.updated": _l("Vendor changed"),
}


def label(action: str | None) -> str:
    """The action in words for the reader; its code when it has no label yet."""
    if not action:
        return ""
    word = LABELS.get(action)
    return str(word) if word is not None else action

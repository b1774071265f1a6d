"""Changing or cancelling a draft disbursement before it starts.

Both lock the draft's row while it is still a draft, so a start approved at the same moment
either runs first (and the change is refused) or waits and finds the draft changed. A pending
request to start it is withdrawn: the approver would otherwise approve something else.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import delete

from portal.approvals import services as approvals
from portal.disbursements import services
from portal.disbursements.models import (
    CANCELLED,
    DRAFT,
    Disbursement,
    DisbursementBatch,
    DisbursementItem,
)
from portal.disbursements.start_approval import KIND as KIND_START
from portal.extensions import db
from portal.projects import services as projects
from portal.projects.models import Project
from portal.timeutil import utcnow
from portal.transitions import move


def _hold_draft(disbursement: Disbursement, refused: str) -> None:
    """Lock the draft's row while it stays a draft (a start waits, or finds it changed), and
    withdraw a request to start it: the approver would be approving something else."""
    # The request first: a final approval takes the request's row, then the draft's, and the
    # same order here means the two queue instead of deadlocking.
    approvals.withdraw_open(KIND_START, disbursement.id)
    move(disbursement, (DRAFT,), DRAFT, refused)


def edit(
    disbursement: Disbursement,
    *,
    title: str,
    amount: int,
    group_id: int | None,
    beneficiary_ids: list[int] | None,
    batch_size: int,
    user_id: int | None,
) -> int:
    """Change a draft: its people, batches and items are made again; returns how many people
    were left out. A pending request to start it is withdrawn."""
    project = db.session.get(Project, disbursement.project_id)
    people, left_out = services.people_for(project, amount, group_id, beneficiary_ids, batch_size)
    _hold_draft(disbursement, _("Only a draft can be changed; this one has started."))
    db.session.execute(
        delete(DisbursementItem).where(DisbursementItem.disbursement_id == disbursement.id)
    )
    db.session.execute(
        delete(DisbursementBatch).where(DisbursementBatch.disbursement_id == disbursement.id)
    )
    disbursement.title = (title or "").strip()[:120] or disbursement.title
    disbursement.amount_each = amount
    disbursement.beneficiaries = len(people)
    disbursement.total = amount * len(people)
    disbursement.batch_size = batch_size
    disbursement.group_id = group_id
    db.session.flush()
    services.fill(disbursement, people)
    db.session.expire(disbursement, ["batches"])
    services.changed(
        disbursement,
        "disbursement.edited",
        {
            "amount_each": amount,
            "beneficiaries": len(people),
            "total": disbursement.total,
            "batch_size": batch_size,
            "left_out": left_out,
            "by": user_id,
        },
    )
    return left_out


def cancel(disbursement: Disbursement, user_id: int | None) -> None:
    """Cancel a draft: it will never start and promises nothing."""
    projects.ensure_writable(db.session.get(Project, disbursement.project_id))
    _hold_draft(disbursement, _("Only a draft can be cancelled; this one has started."))
    move(
        disbursement,
        (DRAFT,),
        CANCELLED,
        _("Only a draft can be cancelled; this one has started."),
        finished_at=utcnow(),
    )
    services.changed(
        disbursement, "disbursement.cancelled", {"total": disbursement.total, "by": user_id}
    )

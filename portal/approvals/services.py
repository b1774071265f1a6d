"""The approval rules: who may ask, who may decide, when an action runs.

- Only a person holding the kind's permission decides, on a request of a project they see.
- Nobody decides on their own request, and a person decides on a request once (both also held
  by the schema, see models.py).
- A request whose amount is above the project's threshold needs two approvals, by two people.
- The final approval moves the request and runs the kind's action in one transaction; every
  step is a conditional UPDATE, so two approvers clicking at once run the action once.
- A reason is required to reject, optional to approve; every step is audited.
"""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import case, exists, func, select, update

from portal import events
from portal.approvals import kinds, live
from portal.approvals.models import (
    APPROVE,
    APPROVED,
    CANCELLED,
    EXECUTED,
    PENDING,
    REJECT,
    REJECTED,
    ApprovalDecision,
    ApprovalRequest,
    ApprovalThreshold,
)
from portal.errors import Conflict, Forbidden, NotFound, ValidationFailed
from portal.extensions import db
from portal.ledger import labels
from portal.projects import services as projects
from portal.projects.models import Project
from portal.timeutil import utcnow
from portal.transitions import change, current_status, insert_or_skip

REASON_MAX = 500
# Summaries in the audit log are written once, for every reader: in English, with its digits.
AUDIT_LOCALE = "en"


# ----------------------------------------------------------------------------- thresholds


def threshold(project_id: int) -> int | None:
    """Base units above which a second approver is needed; None: one approver always."""
    row = db.session.get(ApprovalThreshold, project_id)
    return None if row is None else row.second_above


def set_threshold(project: Project, second_above: int | None, user_id: int | None) -> None:
    projects.ensure_writable(project)
    if second_above is not None and second_above < 0:
        raise ValidationFailed({"second_above": _("Leave it empty, or type an amount.")})
    before = threshold(project.id)
    row = db.session.get(ApprovalThreshold, project.id)
    if row is None:
        row = ApprovalThreshold(project_id=project.id)
        db.session.add(row)
    row.second_above = second_above
    row.updated_by_id = user_id
    db.session.flush()
    events.approval_threshold_changed.send(
        row,
        action="approval.threshold_changed",
        summary=f"Project {project.id}: second approver needed above "
        + ("(never)" if second_above is None else f"{second_above} base units"),
        project_id=project.id,
        data={"before": before, "after": second_above},
    )


def needed_for(project_id: int, amount: int) -> int:
    above = threshold(project_id)
    return 2 if above is not None and amount > above else 1


# ----------------------------------------------------------------------------- asking


def ask(
    kind_name: str,
    project: Project,
    *,
    subject_id: int,
    amount: int,
    note: str,
    user_id: int,
) -> ApprovalRequest:
    """Record a request for ``kind_name``'s action; nothing runs until it is approved."""
    kind = kinds.get(kind_name)
    projects.ensure_writable(project)
    open_key = f"{kind.name}:{subject_id}" if kind.one_open_per_subject else None
    if open_key and db.session.scalar(
        select(ApprovalRequest.id).where(ApprovalRequest.open_key == open_key)
    ):
        raise Conflict(_("This is already waiting for approval."))
    request = ApprovalRequest(
        kind=kind.name,
        project_id=project.id,
        subject_id=subject_id,
        amount=amount,
        note=(note or "").strip()[:REASON_MAX],
        requested_by_id=user_id,
        status=PENDING,
        approvals_needed=needed_for(project.id, amount),
        approvals=0,
        open_key=open_key,
    )
    db.session.add(request)
    db.session.flush()  # a concurrent second open request fails here on the unique key (409)
    with force_locale(AUDIT_LOCALE):  # the audit log is written in English
        _changed(
            request,
            "approval.requested",
            f"{kind.label} requested: {kind.describe(request)}",
            {"amount": amount, "needed": request.approvals_needed, "note": request.note},
        )
    return request


# ----------------------------------------------------------------------------- deciding


def _check_decider(request: ApprovalRequest, user) -> kinds.Kind:
    kind = kinds.get(request.kind)
    projects.get_visible(user, request.project_id)
    if request.requested_by_id == user.id:
        raise Forbidden(_("You asked for this yourself: someone else must decide on it."))
    if not user.can(kind.permission):
        raise Forbidden(_("You may not decide on this kind of request."))
    return kind


def _record_decision(request: ApprovalRequest, user, decision: str, reason: str) -> None:
    made = insert_or_skip(
        ApprovalDecision,
        {
            "request_id": request.id,
            "user_id": user.id,
            "requested_by_id": request.requested_by_id,
            "decision": decision,
            "reason": reason,
            "created_at": utcnow(),
        },
    )
    if made is None:
        raise Conflict(_("You have already decided on this request."))


def _refused(found: str | None) -> str:
    if found == PENDING:
        return _("This request changed at the same moment; reload and decide again.")
    return _(
        "This request is %(status)s now, not waiting for a decision; reload the page.",
        status=labels.label("approval", found),
    )


def approve(request: ApprovalRequest, user, reason: str = "") -> ApprovalRequest:
    """Count ``user``'s approval; the last one needed runs the action, in this transaction."""
    kind = _check_decider(request, user)
    reason = (reason or "").strip()[:REASON_MAX]
    if request.status != PENDING:
        raise Conflict(_refused(request.status))
    _record_decision(request, user, APPROVE, reason)
    # One statement counts the approval and, on the last one, closes the request: a second
    # approver's UPDATE waits for this row's lock and then finds the request approved.
    now_approved = ApprovalRequest.approvals + 1 >= ApprovalRequest.approvals_needed
    result = db.session.execute(
        update(ApprovalRequest)
        .where(
            ApprovalRequest.id == request.id,
            ApprovalRequest.status == PENDING,
            ApprovalRequest.approvals < ApprovalRequest.approvals_needed,
        )
        .values(
            approvals=ApprovalRequest.approvals + 1,
            status=case((now_approved, APPROVED), else_=ApprovalRequest.status),
            decided_at=case((now_approved, utcnow()), else_=ApprovalRequest.decided_at),
            open_key=case((now_approved, None), else_=ApprovalRequest.open_key),
        )
        .returning(ApprovalRequest.status)
        .execution_options(synchronize_session=False)
    ).first()
    if result is None:
        raise Conflict(_refused(current_status(ApprovalRequest, request.id)))
    db.session.refresh(request)
    outcome = None
    if request.status == APPROVED:
        # The action first, then this approval's audit entry: the action takes its own locks
        # (a disbursement start locks the project's funds) before the audit log's head row, in
        # the order every other writer takes them, so two of them cannot wait on each other.
        outcome = kind.execute(request, user.id)
        request.result_id = outcome.result_id
    with force_locale(AUDIT_LOCALE):  # the audit log is written in English
        _changed(
            request,
            "approval.approved" if request.status == APPROVED else "approval.approved_once",
            f"{kind.label} approved by user {user.id}"
            + ("" if request.status == APPROVED else " (one more approver needed)")
            + f": {kind.describe(request)}",
            {"by": user.id, "reason": reason, "approvals": request.approvals},
        )
    if outcome is not None and outcome.executed:
        mark_executed(request)
    return request


def mark_executed(request: ApprovalRequest) -> None:
    """The approved action ran (for kinds whose action completes after the approval)."""
    db.session.flush()
    if not change(ApprovalRequest, request.id, (APPROVED,), EXECUTED, executed_at=utcnow()):
        raise Conflict(_refused(current_status(ApprovalRequest, request.id)))
    db.session.refresh(request)
    kind = kinds.get(request.kind)
    with force_locale(AUDIT_LOCALE):  # the audit log is written in English
        _changed(
            request,
            "approval.executed",
            f"{kind.label} carried out: {kind.describe(request)}",
            {"result_id": request.result_id},
        )


def reject(request: ApprovalRequest, user, reason: str) -> ApprovalRequest:
    kind = _check_decider(request, user)
    reason = (reason or "").strip()[:REASON_MAX]
    if not reason:
        raise ValidationFailed({"reason": _("Say why you reject it: the requester reads this.")})
    if request.status != PENDING:
        raise Conflict(_refused(request.status))
    _record_decision(request, user, REJECT, reason)
    if not change(
        ApprovalRequest,
        request.id,
        (PENDING,),
        REJECTED,
        decided_at=utcnow(),
        open_key=None,
    ):
        raise Conflict(_refused(current_status(ApprovalRequest, request.id)))
    db.session.refresh(request)
    with force_locale(AUDIT_LOCALE):  # the audit log is written in English
        _changed(
            request,
            "approval.rejected",
            f"{kind.label} rejected by user {user.id}: {kind.describe(request)}",
            {"by": user.id, "reason": reason},
        )
    return request


def cancel(request: ApprovalRequest, user) -> ApprovalRequest:
    """The requester withdraws a request that nobody has carried out yet."""
    kind = kinds.get(request.kind)
    if request.requested_by_id != user.id:
        raise Forbidden(_("Only the person who asked can cancel this request."))
    if not change(
        ApprovalRequest,
        request.id,
        (PENDING,),
        CANCELLED,
        decided_at=utcnow(),
        open_key=None,
    ):
        raise Conflict(_refused(current_status(ApprovalRequest, request.id)))
    db.session.refresh(request)
    with force_locale(AUDIT_LOCALE):  # the audit log is written in English
        _changed(
            request, "approval.cancelled", f"{kind.label} cancelled: {kind.describe(request)}", {}
        )
    return request


def withdraw_open(kind_name: str, subject_id: int) -> int:
    """Withdraw the pending requests about a subject that has changed (a draft edited or
    cancelled), whoever asked: approving them would approve something else. Returns how many."""
    kind = kinds.get(kind_name)
    withdrawn = 0
    for request in db.session.scalars(
        select(ApprovalRequest).where(
            ApprovalRequest.kind == kind_name,
            ApprovalRequest.subject_id == subject_id,
            ApprovalRequest.status == PENDING,
        )
    ):
        if change(
            ApprovalRequest, request.id, (PENDING,), CANCELLED, decided_at=utcnow(), open_key=None
        ):
            db.session.refresh(request)
            withdrawn += 1
            with force_locale(AUDIT_LOCALE):  # the audit log is written in English
                _changed(
                    request,
                    "approval.cancelled",
                    f"{kind.label} withdrawn, its subject changed: {kind.describe(request)}",
                    {"subject_changed": True},
                )
    return withdrawn


# ----------------------------------------------------------------------------- reading


def visible(user):
    return projects.scope(select(ApprovalRequest), ApprovalRequest.project_id, user).order_by(
        ApprovalRequest.id.desc()
    )


def get_visible(user, request_id: int) -> ApprovalRequest:
    found = db.session.scalar(visible(user).where(ApprovalRequest.id == request_id))
    if found is None or found.kind not in kinds.KINDS:
        raise NotFound(_("No such approval request."))
    return found


def waiting_for(user):
    """Pending requests the user may decide on now: their projects, kinds they may approve,
    not their own, not already decided by them."""
    allowed = [k.name for k in kinds.KINDS.values() if user.can(k.permission)]
    decided = exists().where(
        ApprovalDecision.request_id == ApprovalRequest.id, ApprovalDecision.user_id == user.id
    )
    return visible(user).where(
        ApprovalRequest.status == PENDING,
        ApprovalRequest.kind.in_(allowed),
        ApprovalRequest.requested_by_id.is_distinct_from(user.id),
        ~decided,
    )


def waiting_count(user) -> int:
    query = waiting_for(user).order_by(None)
    return db.session.scalar(select(func.count()).select_from(query.subquery()))


def for_subject(kind_name: str, subject_id: int, limit: int = 10) -> list[ApprovalRequest]:
    return list(
        db.session.scalars(
            select(ApprovalRequest)
            .where(ApprovalRequest.kind == kind_name, ApprovalRequest.subject_id == subject_id)
            .order_by(ApprovalRequest.id.desc())
            .limit(limit)
        )
    )


def possible_approvers(request: ApprovalRequest, limit: int = 5) -> list[str]:
    """Names of active people who could still approve ``request``, for "waiting for …"."""
    from portal.accounts.models import User
    from portal.projects.models import ProjectMember

    kind = kinds.get(request.kind)
    decided = {d.user_id for d in request.decisions}
    members = set(
        db.session.scalars(
            select(ProjectMember.user_id).where(ProjectMember.project_id == request.project_id)
        )
    )
    names = []
    for user in db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.name)):
        if user.id == request.requested_by_id or user.id in decided:
            continue
        if not user.can(kind.permission):
            continue
        if not (user.sees_all_projects or user.id in members):
            continue
        names.append(user.name)
    return names[: limit + 1]


def describe(request: ApprovalRequest) -> str:
    return kinds.get(request.kind).describe(request)


def _changed(request: ApprovalRequest, action: str, summary: str, data: dict) -> None:
    events.approval_changed.send(
        request,
        action=action,
        summary=f"Approval request {request.id}: {summary}",
        project_id=request.project_id,
        data={"kind": request.kind, "subject_id": request.subject_id, **data},
    )
    live.announce(request)

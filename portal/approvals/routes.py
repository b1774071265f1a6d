"""Pending approvals: what waits for the signed-in user, their own requests, decisions; and a
project's second-approver threshold."""

from __future__ import annotations

import logging

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from portal.accounts.guards import permission_required
from portal.approvals import kinds, services
from portal.approvals.forms import DecisionForm, ThresholdForm
from portal.approvals.models import APPROVE, PENDING, ApprovalRequest
from portal.chain import setup
from portal.chain.models import DEPLOYED
from portal.errors import DomainError, ValidationFailed
from portal.extensions import db
from portal.ledger import display
from portal.projects import services as projects
from portal.transactions import attempt

log = logging.getLogger(__name__)
bp = Blueprint("approvals", __name__)


def _money(req: ApprovalRequest) -> str:
    return display.money(req.amount, setup.state(req.project_id))


def _row(req: ApprovalRequest) -> dict:
    kind = kinds.get(req.kind)
    return {
        "req": req,
        "kind": kind,
        "text": kind.describe(req),
        "money": _money(req),
        "url": kind.subject_url(req),
        "approvers": services.possible_approvers(req) if req.status == PENDING else [],
    }


def _waiting_rows(user) -> list[dict]:
    return [_row(r) for r in db.session.scalars(services.waiting_for(user).limit(100))]


def decision_form(request_id: int) -> DecisionForm:
    # A prefix per request: the list holds one form per request, each with its own field ids.
    return DecisionForm(prefix=f"r{request_id}")


def _forms(rows: list[dict], refused: dict | None = None) -> dict:
    forms = {row["req"].id: decision_form(row["req"].id) for row in rows}
    return {**forms, **(refused or {})}


def _page(forms: dict | None = None, status: int = 200):
    user = current_user
    mine = db.session.scalars(
        services.visible(user).where(ApprovalRequest.requested_by_id == user.id).limit(20)
    ).all()
    recent = db.session.scalars(
        services.visible(user)
        .where(
            ApprovalRequest.status != PENDING,
            ApprovalRequest.kind.in_(list(kinds.KINDS)),
            ApprovalRequest.requested_by_id.is_distinct_from(user.id),
        )
        .limit(20)
    ).all()
    waiting_rows = _waiting_rows(user)
    return (
        render_template(
            "approvals/index.html",
            waiting=waiting_rows,
            mine=[_row(r) for r in mine if r.kind in kinds.KINDS],
            recent=[_row(r) for r in recent],
            forms=_forms(waiting_rows, forms),
        ),
        status,
    )


@bp.get("/approvals")
@permission_required("project.read")
def index():
    return _page()


@bp.get("/approvals/waiting")
@permission_required("project.read")
def waiting():
    """What the badge and the list show, read again after a live event."""
    rows = _waiting_rows(current_user)
    html = render_template("approvals/_waiting.html", waiting=rows, forms=_forms(rows))
    return jsonify({"waiting": len(rows), "html": html})


@bp.get("/approvals/<int:request_id>")
@permission_required("project.read")
def show(request_id: int):
    req = services.get_visible(current_user, request_id)
    return render_template("approvals/show.html", row=_row(req), form=decision_form(req.id))


@bp.post("/approvals/<int:request_id>/decide")
@permission_required("project.read")
def decide(request_id: int):
    req = services.get_visible(current_user, request_id)
    form = decision_form(req.id)
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            with attempt():
                if form.decision.data == APPROVE:
                    services.approve(req, user, form.reason.data)
                else:
                    services.reject(req, user, form.reason.data)
        except ValidationFailed as exc:
            for name, message in exc.fields.items():
                getattr(form, name, form.reason).errors.append(message)
        else:
            db.session.refresh(req)
            flash(_decided_message(req), "success")
            return redirect(_back())
    return _page({req.id: form}, status=422)


def _decided_message(req: ApprovalRequest) -> str:
    kind = kinds.get(req.kind)
    if req.status == PENDING:
        return _(
            "Approved. %(kind)s #%(id)s now waits for a second approver.",
            kind=kind.label,
            id=req.id,
        )
    if req.status in ("executed", "approved"):
        return _("Approved: %(what)s — started.", what=kind.describe(req))
    return _(
        "Rejected: %(kind)s #%(id)s. The requester sees your reason.", kind=kind.label, id=req.id
    )


def _back() -> str:
    # Only our own page: the detail page posts with back=show.
    if request.form.get("back") == "show":
        return url_for("approvals.show", request_id=request.view_args["request_id"])
    return url_for("approvals.index")


@bp.post("/approvals/<int:request_id>/cancel")
@permission_required("project.read")
def cancel(request_id: int):
    req = services.get_visible(current_user, request_id)
    services.cancel(req, current_user._get_current_object())
    flash(_("Request #%(id)s cancelled.", id=req.id), "success")
    return redirect(_back())


def _threshold_form(project_id: int) -> ThresholdForm:
    pc = setup.state(project_id)
    form = ThresholdForm()
    deployed = pc is not None and pc.status == DEPLOYED
    form.second_above.use(
        pc.decimals if deployed else None,
        _("Set up the project's payments first: amounts need its currency."),
    )
    if deployed:
        form.second_above.description = _(
            "In %(currency)s. %(hint)s",
            currency=display.currency(pc),
            hint=form.second_above.description,
        )
    return form


@bp.route("/projects/<int:project_id>/approvals", methods=["GET", "POST"])
@permission_required("project.manage")
def settings(project_id: int):
    project = projects.get_visible(current_user, project_id)
    form = _threshold_form(project.id)
    status = 200
    if form.validate_on_submit():
        try:
            with attempt():
                services.set_threshold(project, form.second_above.data, current_user.id)
        except DomainError as exc:
            form.second_above.errors.append(str(exc))
            status = 422
        else:
            flash(_("Approval rule saved."), "success")
            return redirect(url_for("approvals.settings", project_id=project.id))
    elif form.is_submitted():
        status = 422
    elif request.method == "GET":
        form.second_above.data = services.threshold(project.id)
    pc = setup.state(project.id)
    requests = db.session.scalars(
        select(ApprovalRequest)
        .where(ApprovalRequest.project_id == project.id)
        .order_by(ApprovalRequest.id.desc())
        .limit(20)
    ).all()
    return render_template(
        "approvals/settings.html",
        project=project,
        pc=pc,
        form=form,
        threshold=services.threshold(project.id),
        rows=[_row(r) for r in requests if r.kind in kinds.KINDS],
    ), status


@bp.app_template_global("approvals_waiting")
def approvals_waiting() -> int:
    """The nav badge: how many requests wait for the signed-in user."""
    if not current_user.is_authenticated or not current_user.can("project.read"):
        return 0
    try:
        return services.waiting_count(current_user)
    except SQLAlchemyError:
        # The error page of a database failure must still render: the badge is left out.
        log.warning("could not count approvals for the badge", exc_info=True)
        return 0


@bp.app_template_global("approvals_for")
def approvals_for(kind_name: str, subject_id: int) -> list[dict]:
    """Requests about one subject (a project's fundings, a disbursement's start), for its page."""
    return [_row(r) for r in services.for_subject(kind_name, subject_id, limit=5)]

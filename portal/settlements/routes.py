"""Staff pages of settlements: a project's list (live), one settlement with its trail, the
settlement run, and finance's actions on a settlement whose payout failed."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal import inputs
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.accounts.models import User
from portal.approvals import services as approvals
from portal.approvals.models import ApprovalDecision, ApprovalRequest
from portal.audit.models import AuditEntry
from portal.chain import setup
from portal.chain.models import ChainSettlement, ChainTx
from portal.errors import DomainError, Forbidden, NotFound
from portal.extensions import db
from portal.payouts import methods
from portal.payouts.models import BOOKS_LABELS, KIND_LABELS, Payout
from portal.payouts.models import STATUS_LABELS as PAYOUT_LABELS
from portal.projects import services as projects
from portal.projects.models import Project
from portal.reconciliation.models import StatementLine
from portal.settlements import live, owed, repayment, runs, services
from portal.settlements.forms import CloseForm, RetryForm, RunForm
from portal.settlements.models import (
    STAFF_LABELS,
    STATUSES,
    TONES,
    Settlement,
    SettlementRun,
    reason_shown,
)
from portal.transactions import attempt
from portal.vendors.models import Vendor

bp = Blueprint("settlements", __name__)
# The approval request's state and each decision, as the settlement page says them.
APPROVAL_LABELS = {
    "pending": _l("waiting"),
    "approved": _l("approved"),
    "rejected": _l("rejected"),
    "cancelled": _l("cancelled"),
    "executed": _l("carried out"),
}
DECISION_LABELS = {"approve": _l("Approved"), "reject": _l("Rejected")}


def _names(vendor_ids) -> dict[int, str]:
    return dict(
        db.session.execute(
            select(Vendor.id, Vendor.name).where(Vendor.id.in_(set(vendor_ids)))
        ).all()
    )


@bp.get("/settlements")
@permission_required("settlement.read")
def index():
    first = db.session.scalar(projects.visible_projects(current_user).limit(1))
    if first is None:
        return render_template("settlements/none.html")
    return redirect(url_for("settlements.project", project_id=first.id))


@bp.get("/projects/<int:project_id>/settlements")
@permission_required("settlement.read")
def project(project_id: int):
    project = projects.get_visible(current_user, project_id)
    status = inputs.choice_arg("status", STATUSES)
    vendor_id = inputs.id_arg("vendor")
    start, end = inputs.date_arg("from"), inputs.date_arg("to")
    query = select(Settlement).where(Settlement.project_id == project.id)
    if status:
        query = query.where(Settlement.status == status)
    if vendor_id:
        query = query.where(Settlement.vendor_id == vendor_id)
    # Asked on these days (UTC), both ends included, as the redemptions list filters.
    if start is not None:
        query = query.where(Settlement.created_at >= datetime.combine(start, time()))
    if end is not None:
        query = query.where(
            Settlement.created_at < datetime.combine(end + timedelta(days=1), time())
        )
    rows = db.session.scalars(query.order_by(Settlement.id.desc()).limit(200)).all()
    vendors = db.session.execute(
        select(Vendor.id, Vendor.name)
        .where(
            Vendor.id.in_(select(Settlement.vendor_id).where(Settlement.project_id == project.id))
        )
        .order_by(Vendor.name)
    ).all()
    return render_template(
        "settlements/project.html",
        project=project,
        rows=rows,
        names=_names(r.vendor_id for r in rows),
        money=services.money,
        labels=STAFF_LABELS,
        tones=TONES,
        statuses=STATUSES,
        status=status,
        vendor_id=vendor_id,
        start=start,
        end=end,
        vendors=vendors,
        visible=db.session.scalars(projects.visible_projects(current_user)).all(),
    )


@bp.get("/projects/<int:project_id>/settlements/owed")
@permission_required("settlement.read")
def owed_list(project_id: int):
    project = projects.get_visible(current_user, project_id)
    rows = owed.of_project(project.id)
    return render_template(
        "settlements/owed.html",
        project=project,
        rows=rows,
        totals=owed.totals(rows),
        money=services.money,
    )


@bp.get("/projects/<int:project_id>/settlements/owed.csv")
@permission_required("settlement.read")
def owed_csv(project_id: int):
    project = projects.get_visible(current_user, project_id)
    pc = setup.state(project.id)
    if pc is None:
        raise NotFound(_("This project's payments are not set up yet, so nothing is owed in it."))
    body = owed.to_csv(owed.of_project(project.id), pc.decimals, pc.symbol)
    return Response(
        body,
        mimetype="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="owed-to-vendors-{project.id}.csv"',
            "Cache-Control": "no-store",
        },
    )


@bp.get("/settlements/<int:settlement_id>")
@permission_required("settlement.read")
def show(settlement_id: int):
    row = services.get_visible(current_user, settlement_id)
    ask = db.session.get(ApprovalRequest, row.approval_id) if row.approval_id else None
    decisions = (
        db.session.scalars(
            select(ApprovalDecision)
            .where(ApprovalDecision.request_id == ask.id)
            .order_by(ApprovalDecision.id)
        ).all()
        if ask
        else []
    )
    deciders = dict(
        db.session.execute(
            select(User.id, User.name).where(User.id.in_({d.user_id for d in decisions}))
        ).all()
    )
    cs = db.session.scalar(select(ChainSettlement).where(ChainSettlement.key == row.chain_key))
    tx = db.session.get(ChainTx, cs.tx_id) if cs and cs.tx_id else None
    payouts = db.session.scalars(
        select(Payout)
        .where(Payout.source_id == row.id, Payout.source_type.like(f"{services.SOURCE}%"))
        .order_by(Payout.id)
    ).all()
    lines = (
        db.session.scalars(
            select(StatementLine).where(StatementLine.payout_id.in_([p.id for p in payouts]))
        ).all()
        if payouts
        else []
    )
    trail = db.session.scalars(
        select(AuditEntry)
        .where(AuditEntry.target_type == "settlements", AuditEntry.target_id == str(row.id))
        .order_by(AuditEntry.id)
    ).all()
    retry = RetryForm()
    retry.method_id.choices = [
        (m.id, f"{KIND_LABELS[m.kind]} {methods.mask(m.account_number)}")
        for m in methods.of_vendor(row.vendor_id)
    ]
    retry.method_id.data = row.method_id
    return render_template(
        "settlements/show.html",
        s=row,
        project=db.session.get(Project, row.project_id),
        vendor=db.session.get(Vendor, row.vendor_id),
        ask=ask,
        decisions=decisions,
        deciders=deciders,
        describe=approvals.describe,
        chain_settlement=cs,
        tx=tx,
        payouts=payouts,
        lines=lines,
        trail=trail,
        money=services.money,
        labels=STAFF_LABELS,
        tones=TONES,
        payout_labels=PAYOUT_LABELS,
        approval_labels=APPROVAL_LABELS,
        decision_labels=DECISION_LABELS,
        reason_shown=reason_shown,
        books_labels=BOOKS_LABELS,
        retry_form=retry,
        repay_ask=repayment.waiting_approval(row),
        notes=live.notes(row),
        close_form=CloseForm(),
        send_form=EmptyForm(),
        can_manage=current_user.can("settlement.manage"),
    )


def _managed(settlement_id: int) -> Settlement:
    row = services.get_visible(current_user, settlement_id)
    if not current_user.can("settlement.manage"):
        raise Forbidden(_("You may not act on settlements."))
    return row


@bp.post("/settlements/<int:settlement_id>/retry")
@permission_required("settlement.read")
def retry(settlement_id: int):
    row = _managed(settlement_id)
    form = RetryForm()
    form.method_id.choices = [(m.id, str(m.id)) for m in methods.of_vendor(row.vendor_id)]
    if form.validate_on_submit():
        try:
            with attempt():
                done = repayment.retry_payout(row, form.method_id.data, current_user.id)
        except DomainError as exc:
            flash(str(exc), "error")
        else:
            flash(
                _("The payout is asked for again.")
                if done == repayment.SENT
                else _("Paying it to another account waits for approval by someone else."),
                "success",
            )
    else:
        flash(_("Choose one of the vendor's payout methods."), "error")
    return redirect(url_for("settlements.show", settlement_id=row.id))


@bp.post("/settlements/<int:settlement_id>/send")
@permission_required("settlement.read")
def send(settlement_id: int):
    row = _managed(settlement_id)
    if not EmptyForm().validate_on_submit():
        raise DomainError(_("The page was open too long. Go back and reload it."))
    try:
        with attempt():
            services.send_payout(row, current_user.id)
    except DomainError as exc:
        flash(str(exc), "error")
    else:
        flash(_("The payout is asked for."), "success")
    return redirect(url_for("settlements.show", settlement_id=row.id))


@bp.post("/settlements/<int:settlement_id>/close")
@permission_required("settlement.read")
def close(settlement_id: int):
    row = _managed(settlement_id)
    form = CloseForm()
    if form.validate_on_submit():
        try:
            with attempt():
                repayment.close_failed(row, form.reason.data, current_user.id)
        except DomainError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Closed as failed; the reason is in its trail."), "success")
    else:
        flash(_("Say why you close it."), "error")
    return redirect(url_for("settlements.show", settlement_id=row.id))


@bp.route("/projects/<int:project_id>/settlements/run", methods=["GET", "POST"])
@permission_required("settlement.manage")
def open_run(project_id: int):
    project = projects.get_visible(current_user, project_id)
    form = RunForm()
    if form.validate_on_submit():
        try:
            with attempt():
                run = runs.open_run(
                    project, form.period_from.data, form.period_to.data, current_user.id
                )
        except DomainError as exc:
            form.period_to.errors = [*form.period_to.errors, str(exc)]
        else:
            return redirect(url_for("settlements.run", run_id=run.id))
    return render_template("settlements/run_form.html", project=project, form=form), (
        422 if form.errors else 200
    )


@bp.get("/settlements/runs/<int:run_id>")
@permission_required("settlement.read")
def run(run_id: int):
    found = db.session.get(SettlementRun, run_id)
    if found is None:
        raise NotFound(_("No such settlement run."))
    project = projects.get_visible(current_user, found.project_id)
    rows = db.session.scalars(
        select(Settlement).where(Settlement.run_id == found.id).order_by(Settlement.id)
    ).all()
    return render_template(
        "settlements/run.html",
        run=found,
        project=project,
        rows=rows,
        names=_names(r.vendor_id for r in rows),
        skipped=runs.skipped_of(found),
        money=services.money,
        labels=STAFF_LABELS,
        tones=TONES,
    )

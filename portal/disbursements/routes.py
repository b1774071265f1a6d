"""Disbursement pages: list, create (a draft with its count and total), start, watch, retry."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.accounts.guards import permission_required
from portal.beneficiaries.models import Beneficiary, BeneficiaryGroup
from portal.chain import setup
from portal.chain.models import DEPLOYED
from portal.disbursements import services, start_approval
from portal.disbursements.forms import DisbursementForm
from portal.disbursements.models import DisbursementBatch
from portal.errors import NotFound, ValidationFailed
from portal.extensions import db
from portal.jobs import attention
from portal.ledger import display
from portal.money import amounts
from portal.projects import services as projects
from portal.transactions import attempt

bp = Blueprint("disbursements", __name__)
NO_GROUP = 0


@bp.get("/projects/<int:project_id>/disbursements")
@permission_required("disbursement.manage")
def index(project_id: int):
    project = projects.get_visible(current_user, project_id)
    items = db.session.scalars(
        services.visible(current_user).where(services.Disbursement.project_id == project.id)
    ).all()
    pc = setup.state(project.id)
    return render_template("disbursements/index.html", project=project, items=items, pc=pc)


def _form(project) -> DisbursementForm:
    form = DisbursementForm()
    if form.batch_size.data is None:
        form.batch_size.data = current_app.config["DISBURSEMENT_BATCH_SIZE"]
    groups = db.session.scalars(
        select(BeneficiaryGroup)
        .where(BeneficiaryGroup.project_id == project.id)
        .order_by(BeneficiaryGroup.name)
    ).all()
    form.group_id.choices = {NO_GROUP: "— none: use the selection below —"} | {
        g.id: g.name for g in groups
    }
    return form


def _selection(project, text: str) -> list[int]:
    refs = [r for r in re.split(r"[\s,;]+", (text or "").strip().upper()) if r]
    if not refs:
        return []
    found = dict(
        db.session.execute(
            select(Beneficiary.ref, Beneficiary.id).where(Beneficiary.ref.in_(refs))
        ).all()
    )
    unknown = [r for r in refs if r not in found]
    if unknown:
        shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise ValidationFailed({"refs": f"{len(unknown)} unknown reference(s): {shown}"})
    return sorted(set(found.values()))


@bp.route("/projects/<int:project_id>/disbursements/new", methods=["GET", "POST"])
@permission_required("disbursement.manage")
def new(project_id: int):
    project = projects.get_visible(current_user, project_id)
    pc = setup.state(project.id)
    form = _form(project)
    form.amount.use(pc.decimals if pc is not None and pc.status == DEPLOYED else None)
    if form.amount.decimals is not None:
        form.amount.description = f"In {display.currency(pc)}. {amounts.hint(pc.decimals)}"
    status = 200
    if form.validate_on_submit():
        try:
            with attempt():
                group_id = form.group_id.data or None
                selection = None if group_id else _selection(project, form.refs.data)
                disbursement, left_out = services.create(
                    project,
                    title=form.title.data,
                    amount=form.amount.data,
                    group_id=group_id,
                    beneficiary_ids=selection,
                    batch_size=form.batch_size.data,
                    user_id=current_user.id,
                )
        except ValidationFailed as exc:
            for name, message in exc.fields.items():
                field = getattr(form, name, None) or form.amount
                field.errors = [*field.errors, message]
            status = 422
        else:
            if left_out:
                flash(f"{left_out} people were left out: they have no wallet address yet.", "info")
            return redirect(url_for("disbursements.show", disbursement_id=disbursement.id))
    elif form.is_submitted():
        status = 422
    return render_template(
        "disbursements/new.html",
        project=project,
        pc=pc,
        form=form,
        available=services.available(project.id) if pc else 0,
    ), status


@bp.get("/disbursements/<int:disbursement_id>")
@permission_required("disbursement.manage")
def show(disbursement_id: int):
    disbursement = services.get_visible(current_user, disbursement_id)
    project = projects.get_visible(current_user, disbursement.project_id)
    pc = setup.state(project.id)
    return render_template(
        "disbursements/show.html",
        d=disbursement,
        project=project,
        pc=pc,
        progress=services.progress(disbursement),
        available=services.available(project.id),
        stuck=attention.stuck_batch_ids(disbursement.id),
    )


@bp.post("/disbursements/<int:disbursement_id>/start")
@permission_required("disbursement.manage")
def start(disbursement_id: int):
    disbursement = services.get_visible(current_user, disbursement_id)
    start_approval.ask(disbursement, current_user.id)
    flash(
        "Sent for approval: the allocation starts once someone else approves it. "
        "This page updates by itself."
    )
    return redirect(url_for("disbursements.show", disbursement_id=disbursement.id))


@bp.post("/disbursements/<int:disbursement_id>/batches/<int:batch_id>/retry")
@permission_required("disbursement.manage")
def retry(disbursement_id: int, batch_id: int):
    disbursement = services.get_visible(current_user, disbursement_id)
    batch = db.session.get(DisbursementBatch, batch_id)
    if batch is None or batch.disbursement_id != disbursement.id:
        raise NotFound("No such batch in this disbursement.")
    services.retry_batch(batch, current_user.id)
    flash(f"Batch {batch.number} sent again; a batch already done is never allocated twice.")
    return redirect(url_for("disbursements.show", disbursement_id=disbursement.id))


@bp.post("/disbursements/<int:disbursement_id>/batches/<int:batch_id>/restart")
@permission_required("disbursement.manage")
def restart(disbursement_id: int, batch_id: int):
    """A stuck batch (no transaction on its way, no live job): send it again."""
    disbursement = services.get_visible(current_user, disbursement_id)
    batch = db.session.get(DisbursementBatch, batch_id)
    if batch is None or batch.disbursement_id != disbursement.id:
        raise NotFound("No such batch in this disbursement.")
    job = attention.restart_batch(batch, current_user.id)
    flash(
        f"Batch {batch.number} is queued again as job {job.id}. It checks the chain first, "
        "so nobody is allocated twice."
    )
    return redirect(url_for("disbursements.show", disbursement_id=disbursement.id))

"""Disbursement pages: list, create (a draft with its count and total), start, watch, retry."""

from __future__ import annotations

import re

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from portal import confirmation, inputs
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.beneficiaries.models import Beneficiary, BeneficiaryGroup
from portal.chain import setup
from portal.chain.models import DEPLOYED
from portal.disbursements import drafts, recipients, services, start_approval
from portal.disbursements.forms import DisbursementForm
from portal.disbursements.models import DRAFT, DisbursementBatch, DisbursementItem
from portal.errors import NotFound, ValidationFailed
from portal.extensions import db
from portal.i18n.formatting import number
from portal.jobs import attention
from portal.ledger import display
from portal.money import amounts
from portal.projects import services as projects
from portal.transactions import attempt
from portal.web import wants_json

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
    form.group_id.choices = {NO_GROUP: _("— none: use the selection below —")} | {
        g.id: g.name for g in groups
    }
    return form


def _left_out(count: int) -> str:
    return ngettext(
        "%(count)s person was left out: they have no wallet address yet.",
        "%(count)s people were left out: they have no wallet address yet.",
        count,
        count=number(count),
    )


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
        raise ValidationFailed(
            {
                "refs": ngettext(
                    "%(count)s unknown reference: %(shown)s",
                    "%(count)s unknown references: %(shown)s",
                    len(unknown),
                    count=number(len(unknown)),
                    shown=shown,
                )
            }
        )
    return sorted(set(found.values()))


def _amount_field(form: DisbursementForm, pc) -> None:
    form.amount.use(pc.decimals if pc is not None and pc.status == DEPLOYED else None)
    if form.amount.decimals is not None:
        form.amount.description = _(
            "In %(currency)s. %(hint)s",
            currency=display.currency(pc),
            hint=amounts.hint(pc.decimals),
        )


def _save(form: DisbursementForm, project, save):
    """Validate ``form`` and call ``save(**inputs)`` (the draft's title, amount, group or
    selection, batch size and author); None and the status when refused, with field errors."""
    if not form.validate_on_submit():
        return None, 422 if form.is_submitted() else 200
    try:
        with attempt():
            group_id = form.group_id.data or None
            return save(
                title=form.title.data,
                amount=form.amount.data,
                group_id=group_id,
                beneficiary_ids=None if group_id else _selection(project, form.refs.data),
                batch_size=form.batch_size.data,
                user_id=current_user.id,
            ), 200
    except ValidationFailed as exc:
        for name, message in exc.fields.items():
            field = getattr(form, name, None) or form.amount
            field.errors = [*field.errors, message]
        return None, 422


def _form_page(project, pc, form, status: int, disbursement=None):
    return render_template(
        "disbursements/new.html",
        project=project,
        pc=pc,
        form=form,
        d=disbursement,
        available=services.available(project.id) if pc else 0,
    ), status


@bp.route("/projects/<int:project_id>/disbursements/new", methods=["GET", "POST"])
@permission_required("disbursement.manage")
def new(project_id: int):
    project = projects.get_visible(current_user, project_id)
    pc = setup.state(project.id)
    form = _form(project)
    _amount_field(form, pc)

    made, status = _save(form, project, lambda **inputs: services.create(project, **inputs))
    if made is None:
        return _form_page(project, pc, form, status)
    disbursement, left_out = made
    if left_out:
        flash(_left_out(left_out), "info")
    return redirect(url_for("disbursements.show", disbursement_id=disbursement.id))


@bp.route("/disbursements/<int:disbursement_id>/edit", methods=["GET", "POST"])
@permission_required("disbursement.manage")
def edit(disbursement_id: int):
    disbursement = services.get_visible(current_user, disbursement_id)
    if disbursement.status != DRAFT:
        flash(_("Only a draft can be changed; this one has started."), "error")
        return redirect(url_for("disbursements.show", disbursement_id=disbursement.id))
    project = projects.get_visible(current_user, disbursement.project_id)
    pc = setup.state(project.id)
    form = _form(project)
    _amount_field(form, pc)
    if not form.is_submitted():
        form.title.data = disbursement.title
        form.amount.data = disbursement.amount_each
        form.batch_size.data = disbursement.batch_size
        form.group_id.data = disbursement.group_id or NO_GROUP
        if disbursement.group_id is None:
            form.refs.data = "\n".join(
                db.session.scalars(
                    select(Beneficiary.ref)
                    .join(DisbursementItem, DisbursementItem.beneficiary_id == Beneficiary.id)
                    .where(DisbursementItem.disbursement_id == disbursement.id)
                    .order_by(DisbursementItem.id)
                )
            )

    left_out, status = _save(form, project, lambda **inputs: drafts.edit(disbursement, **inputs))
    if left_out is None:
        return _form_page(project, pc, form, status, disbursement)
    flash(_("Draft saved. A request to start it, if there was one, was withdrawn: ask again."))
    if left_out:
        flash(_left_out(left_out), "info")
    return redirect(url_for("disbursements.show", disbursement_id=disbursement.id))


@bp.post("/disbursements/<int:disbursement_id>/cancel")
@permission_required("disbursement.manage")
def cancel(disbursement_id: int):
    disbursement = services.get_visible(current_user, disbursement_id)
    project = projects.get_visible(current_user, disbursement.project_id)
    if not confirmation.given():
        return confirmation.page(
            _("Cancel the draft “%(title)s”?", title=disbursement.title),
            _(
                "Nobody is paid from it and it cannot be started again; it stays on the list "
                "as cancelled."
            ),
            yes=_("Cancel the draft"),
            back=url_for("disbursements.show", disbursement_id=disbursement.id),
            danger=True,
        )
    drafts.cancel(disbursement, current_user.id)
    flash(_("“%(title)s” was cancelled.", title=disbursement.title))
    return redirect(url_for("disbursements.index", project_id=project.id))


def _show_page(disbursement, *, refused: str | None = None, status: int = 200):
    project = projects.get_visible(current_user, disbursement.project_id)
    pc = setup.state(project.id)
    free = services.available(project.id)
    shown = inputs.choice_arg("who", recipients.STATUSES)
    return render_template(
        "disbursements/show.html",
        d=disbursement,
        project=project,
        pc=pc,
        group=db.session.get(BeneficiaryGroup, disbursement.group_id)
        if disbursement.group_id
        else None,
        progress=services.progress(disbursement),
        available=free,
        shortfall=services.shortfall(disbursement, free) if disbursement.status == DRAFT else 0,
        refused=refused,
        stuck=attention.stuck_batch_ids(disbursement.id),
        people=recipients.page(disbursement, current_user, inputs.page_arg(), shown),
        people_counts=recipients.counts(disbursement),
        who=shown,
    ), status


@bp.get("/disbursements/<int:disbursement_id>")
@permission_required("disbursement.manage")
def show(disbursement_id: int):
    return _show_page(services.get_visible(current_user, disbursement_id))


@bp.post("/disbursements/<int:disbursement_id>/start")
@permission_required("disbursement.manage")
def start(disbursement_id: int):
    disbursement = services.get_visible(current_user, disbursement_id)
    try:
        with attempt():  # a refusal leaves nothing of the request behind (a savepoint)
            start_approval.ask(disbursement, current_user.id)
    except services.Shortfall as exc:
        if wants_json():
            raise  # the API answers with its problem body
        return _show_page(disbursement, refused=str(exc), status=409)
    flash(
        _(
            "Sent for approval: the allocation starts once someone else approves it. "
            "This page updates by itself."
        )
    )
    return redirect(url_for("disbursements.show", disbursement_id=disbursement.id))


@bp.post("/disbursements/<int:disbursement_id>/people.<fmt>")
@permission_required("disbursement.manage")
def export_people(disbursement_id: int, fmt: str):
    if fmt not in recipients.FORMATS:
        abort(404)
    disbursement = services.get_visible(current_user, disbursement_id)
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("disbursements.show", disbursement_id=disbursement.id))
    project = projects.get_visible(current_user, disbursement.project_id)
    pc = setup.state(project.id)
    with_pii = current_user.can(recipients.PII)
    recipients.record_export(disbursement, fmt, with_pii)
    chunks = recipients.export_chunks(
        disbursement, fmt, with_pii=with_pii, decimals=pc.decimals, currency=project.currency
    )
    return Response(
        stream_with_context(chunks),
        mimetype=recipients.FORMATS[fmt],
        headers={
            "Content-Disposition": (
                f'attachment; filename="{recipients.filename(disbursement, fmt)}"'
            ),
            "Cache-Control": "no-store",
        },
    )


@bp.post("/disbursements/<int:disbursement_id>/batches/<int:batch_id>/retry")
@permission_required("disbursement.manage")
def retry(disbursement_id: int, batch_id: int):
    disbursement = services.get_visible(current_user, disbursement_id)
    batch = db.session.get(DisbursementBatch, batch_id)
    if batch is None or batch.disbursement_id != disbursement.id:
        raise NotFound(_("No such batch in this disbursement."))
    services.retry_batch(batch, current_user.id)
    flash(
        _(
            "Batch %(num)s sent again; a batch already done is never allocated twice.",
            num=batch.number,
        )
    )
    return redirect(url_for("disbursements.show", disbursement_id=disbursement.id))


@bp.post("/disbursements/<int:disbursement_id>/batches/<int:batch_id>/restart")
@permission_required("disbursement.manage")
def restart(disbursement_id: int, batch_id: int):
    """A stuck batch (no transaction on its way, no live job): send it again."""
    disbursement = services.get_visible(current_user, disbursement_id)
    batch = db.session.get(DisbursementBatch, batch_id)
    if batch is None or batch.disbursement_id != disbursement.id:
        raise NotFound(_("No such batch in this disbursement."))
    job = attention.restart_batch(batch, current_user.id)
    flash(
        _(
            "Batch %(num)s is queued again as job %(job)s. It checks the chain first, "
            "so nobody is allocated twice.",
            num=batch.number,
            job=job.id,
        )
    )
    return redirect(url_for("disbursements.show", disbursement_id=disbursement.id))

"""The reconciliation page: upload a provider statement, see what matched and what did not,
resolve the exceptions."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from portal import inputs
from portal.accounts.guards import permission_required
from portal.errors import DomainError, ValidationFailed
from portal.extensions import db
from portal.i18n.formatting import number
from portal.payouts.forms import MatchForm, OverrideForm, ReasonForm, StatementForm
from portal.payouts.models import KINDS
from portal.payouts.services import decimals_of
from portal.projects import services as projects
from portal.projects.models import Project
from portal.reconciliation import services, statements
from portal.reconciliation.chainside import chain_side
from portal.reconciliation.services import StatementRefused
from portal.transactions import attempt
from portal.vendors.models import Vendor

bp = Blueprint("reconciliation", __name__, url_prefix="/reconciliation")


def _projects() -> list[Project]:
    return list(db.session.scalars(projects.visible_projects(current_user).order_by(Project.name)))


def _page(project: Project | None, upload_form: StatementForm, refused=None, status=200):
    found = services.view(project.id) if project else None
    payouts = found.missing if found else []
    vendor_ids = {p.vendor_id for p in payouts}
    return render_template(
        "reconciliation/index.html",
        project=project,
        projects=_projects(),
        view=found,
        vendor_names=dict(
            db.session.execute(
                Vendor.__table__.select()
                .with_only_columns(Vendor.id, Vendor.name)
                .where(Vendor.id.in_(vendor_ids))
            ).all()
        ),
        chain=chain_side(payouts),
        upload_form=upload_form,
        match_form=MatchForm(),
        reason_form=ReasonForm(),
        override_form=OverrideForm(),
        refused=refused or [],
        aliases=statements.ALIASES,
        kinds=KINDS,
        project_decimals=(decimals_of(project.id) if project else None) or 0,
    ), status


@bp.get("/")
@permission_required("payout.read")
def index():
    project_id = inputs.id_arg("project")
    project = projects.get_visible(current_user, project_id) if project_id else None
    form = StatementForm(project_id=project.id if project else None)
    form.project_id.choices = [(p.id, p.name) for p in _projects()]
    return _page(project, form)


@bp.post("/statements")
@permission_required("payout.read", "payout.manage")
def upload():
    form = StatementForm()
    form.project_id.choices = [(p.id, p.name) for p in _projects()]
    project = None
    if form.validate_on_submit():
        project = projects.get_visible(current_user, form.project_id.data)
        with tempfile.TemporaryDirectory() as folder:
            name = Path(form.file.data.filename or "statement").name
            path = Path(folder) / "statement"
            with path.open("wb") as out:
                shutil.copyfileobj(form.file.data.stream, out)
            try:
                with attempt():
                    statement = services.upload(project, path, name, current_user.id)
            except StatementRefused as exc:
                form.file.errors.append(exc.message)
                return _page(project, form, exc.rows, 422)
        flash(
            ngettext(
                "Statement %(file)s read: %(count)s line.",
                "Statement %(file)s read: %(count)s lines.",
                statement.line_count,
                file=statement.filename,
                count=number(statement.line_count),
            ),
            "success",
        )
        return redirect(url_for("reconciliation.index", project=project.id))
    return _page(project, form, status=422)


def _resolve(line_id: int, act) -> object:
    line = services.get_line(current_user, line_id)
    project = db.session.get(Project, line.project_id)
    try:
        with attempt():
            act(line)
    except ValidationFailed as exc:
        form = StatementForm(project_id=project.id)
        form.project_id.choices = [(p.id, p.name) for p in _projects()]
        flash("; ".join(exc.fields.values()), "error")
        return _page(project, form, status=422)
    return redirect(url_for("reconciliation.index", project=project.id))


@bp.post("/lines/<int:line_id>/match")
@permission_required("payout.read", "payout.manage")
def match(line_id: int):
    form = MatchForm()
    if not form.validate_on_submit():
        raise DomainError(_("Give the payout's reference and a reason."))
    override = current_user.can("payout.override")

    def act(line):
        services.match_by_hand(
            line, form.reference.data, form.reason.data, current_user, override=override
        )
        flash(_("Line matched."), "success")

    return _resolve(line_id, act)


@bp.post("/lines/<int:line_id>/set-aside")
@permission_required("payout.read", "payout.manage")
def set_aside(line_id: int):
    form = ReasonForm()
    if not form.validate_on_submit():
        raise DomainError(_("Give a reason."))

    def act(line):
        services.set_aside(line, form.reason.data, current_user)
        flash(_("Line set aside."), "success")

    return _resolve(line_id, act)

"""Vendor pages: list, register, detail, edit, approval and suspension, project assignment."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal import confirmation, inputs
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.beneficiaries.forms import ProjectPickForm
from portal.errors import DomainError
from portal.extensions import db
from portal.projects import services as projects
from portal.projects.models import Project
from portal.transactions import attempt
from portal.vendors import services
from portal.vendors.forms import VendorForm, VendorStatusForm
from portal.vendors.models import CATEGORIES, STATUS_LABELS, STATUSES, TRANSITIONS

bp = Blueprint("vendors", __name__, url_prefix="/vendors")
ACTION_LABELS = {"approved": _l("Approve"), "suspended": _l("Suspend")}


def _values(form: VendorForm) -> dict:
    return {
        k: getattr(form, k).data for k in ("name", "category", "contact_name", "phone", "location")
    }


@bp.get("/")
@permission_required("vendor.read")
def index():
    page = db.paginate(
        services.search(
            current_user,
            status=inputs.choice_arg("status", STATUSES),
            project_id=inputs.id_arg("project"),
            q=inputs.text_arg("q"),
        ),
        page=inputs.page_arg(),
        per_page=25,
        error_out=False,
    )
    return render_template(
        "vendors/index.html",
        page=page,
        statuses=STATUSES,
        status_labels=STATUS_LABELS,
        categories=CATEGORIES,
        projects=db.session.scalars(projects.visible_projects(current_user)).all(),
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required("vendor.manage")
def new():
    form = VendorForm()
    choices = [(p.id, p.name) for p in projects.open_projects(current_user)]
    form.project_id.choices = (
        [(0, _("— none yet —")), *choices] if current_user.sees_all_projects else choices
    )
    if form.validate_on_submit():
        project = (
            projects.get_visible(current_user, form.project_id.data)
            if form.project_id.data
            else None
        )
        if project is None and not current_user.sees_all_projects:
            form.project_id.errors = [_("Choose the project this vendor serves.")]
        else:
            try:
                with attempt():
                    vendor = services.register(_values(form), project)
            except DomainError as exc:
                getattr(form, getattr(exc, "field", "name"), form.name).errors.append(str(exc))
            else:
                flash(
                    _("Vendor %(name)s registered; it waits for approval.", name=vendor.name),
                    "success",
                )
                return redirect(url_for("vendors.show", vendor_id=vendor.id))
    return render_template("vendors/form.html", form=form, vendor=None)


@bp.get("/<int:vendor_id>")
@permission_required("vendor.read")
def show(vendor_id: int):
    vendor = services.get_visible(current_user, vendor_id)
    assigned = services.project_ids_of(vendor)
    status_form = VendorStatusForm()
    status_form.status.choices = [(s, ACTION_LABELS[s]) for s in TRANSITIONS[vendor.status]]
    project_form = ProjectPickForm()
    project_form.project_id.choices = [
        (p.id, p.name) for p in projects.open_projects(current_user) if p.id not in assigned
    ]
    return render_template(
        "vendors/show.html",
        vendor=vendor,
        # Only the projects the user sees: a vendor's other assignments are not theirs to know.
        projects=db.session.scalars(
            projects.scope(select(Project), Project.id, current_user).where(
                Project.id.in_(assigned)
            )
        ).all(),
        status_form=status_form,
        project_form=project_form,
        remove_form=EmptyForm(),
        categories=CATEGORIES,
        status_labels=STATUS_LABELS,
    )


@bp.route("/<int:vendor_id>/edit", methods=["GET", "POST"])
@permission_required("vendor.manage")
def edit(vendor_id: int):
    vendor = services.get_visible(current_user, vendor_id)
    form = VendorForm(obj=vendor)
    form.project_id.choices = [(0, "")]
    if form.validate_on_submit():
        try:
            with attempt():
                services.update(vendor, _values(form))
        except DomainError as exc:
            getattr(form, getattr(exc, "field", "name"), form.name).errors.append(str(exc))
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("vendors.show", vendor_id=vendor.id))
    return render_template("vendors/form.html", form=form, vendor=vendor)


@bp.post("/<int:vendor_id>/status")
@permission_required("vendor.approve")
def change_status(vendor_id: int):
    vendor = services.get_visible(current_user, vendor_id)
    form = VendorStatusForm()
    form.status.choices = [(s, s) for s in TRANSITIONS[vendor.status]]
    if form.validate_on_submit():
        services.change_status(vendor, form.status.data, form.reason.data or "")
        flash(
            _("Vendor is now %(status)s.", status=STATUS_LABELS[vendor.status].lower()), "success"
        )
    else:
        flash(_("Choose a decision this vendor can take."), "error")
    return redirect(url_for("vendors.show", vendor_id=vendor.id))


@bp.post("/<int:vendor_id>/projects")
@permission_required("vendor.manage")
def assign(vendor_id: int):
    vendor = services.get_visible(current_user, vendor_id)
    form = ProjectPickForm()
    form.project_id.choices = [(p.id, p.name) for p in projects.open_projects(current_user)]
    if form.validate_on_submit():
        services.assign(vendor, projects.get_visible(current_user, form.project_id.data))
        flash(_("Assigned."), "success")
    return redirect(url_for("vendors.show", vendor_id=vendor.id))


@bp.post("/<int:vendor_id>/projects/<int:project_id>/remove")
@permission_required("vendor.manage")
def unassign(vendor_id: int, project_id: int):
    vendor = services.get_visible(current_user, vendor_id)
    project = projects.get_visible(current_user, project_id)
    if EmptyForm().validate_on_submit():
        if not confirmation.given():
            return confirmation.page(
                _("Remove %(vendor)s from %(project)s?", vendor=vendor.name, project=project.name),
                _(
                    "The shop can no longer take payments in this project. Payments already made "
                    "and what the project owes the shop are kept."
                ),
                yes=_("Remove from the project"),
                back=url_for("vendors.show", vendor_id=vendor.id),
                danger=True,
            )
        services.unassign(vendor, project)
        flash(_("Removed from the project."), "success")
    return redirect(url_for("vendors.show", vendor_id=vendor.id))

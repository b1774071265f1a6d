"""Project pages: list, create, detail, edit, status and members."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from portal import confirmation
from portal.accounts.guards import permission_required
from portal.accounts.models import User
from portal.accounts.safeguards import Refused
from portal.beneficiaries.models import BeneficiaryGroup, ProjectBeneficiary
from portal.errors import DomainError, ValidationFailed
from portal.extensions import db
from portal.projects import services
from portal.projects.forms import MembersForm, ProjectForm, StatusForm
from portal.projects.models import ACTIVE, CLOSED, STATUS_LABELS, STATUSES, TRANSITIONS
from portal.transactions import attempt
from portal.vendors.models import VendorProject

bp = Blueprint("projects", __name__, url_prefix="/projects")
FIELDS = ("name", "type", "description", "location", "currency", "start_date", "end_date")

# What the flash says after a move: a whole sentence per status, so each language words it.
NOW = {
    ACTIVE: _l("Project is now active."),
    CLOSED: _l("Project is now closed."),
}


def _form_data(form: ProjectForm) -> dict:
    return {k: getattr(form, k).data for k in FIELDS}


def _show_error(form: ProjectForm, exc: DomainError) -> None:
    fields = exc.fields if isinstance(exc, ValidationFailed) else {"name": str(exc)}
    for key, message in fields.items():
        getattr(form, key, form.name).errors.append(message)


@bp.get("/")
@permission_required("project.read")
def index():
    rows = db.session.scalars(services.visible_projects(current_user)).all()
    counts = dict(
        db.session.execute(
            select(ProjectBeneficiary.project_id, func.count()).group_by(
                ProjectBeneficiary.project_id
            )
        ).all()
    )
    return render_template(
        "projects/index.html",
        projects=rows,
        counts=counts,
        statuses=STATUSES,
        status_labels=STATUS_LABELS,
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required("project.manage")
def new():
    form = ProjectForm()
    if form.validate_on_submit():
        try:
            with attempt():
                project = services.create(_form_data(form), current_user)
        except DomainError as exc:
            _show_error(form, exc)
        else:
            flash(_("Project “%(name)s” created as a draft.", name=project.name), "success")
            return redirect(url_for("projects.show", project_id=project.id))
    return render_template("projects/form.html", form=form, project=None)


@bp.get("/<int:project_id>")
@permission_required("project.read")
def show(project_id: int):
    return _show_page(services.get_visible(current_user, project_id))


def _show_page(project, members_form: MembersForm | None = None):
    """The project page; ``members_form`` carries a refused members change and its errors."""
    stats = {
        "beneficiaries": db.session.scalar(
            select(func.count()).where(ProjectBeneficiary.project_id == project.id)
        ),
        "vendors": db.session.scalar(
            select(func.count()).where(VendorProject.project_id == project.id)
        ),
    }
    groups = db.session.scalars(
        select(BeneficiaryGroup).where(BeneficiaryGroup.project_id == project.id)
    ).all()
    status_form = StatusForm()
    status_form.status.choices = [(s, STATUS_LABELS[s]) for s in TRANSITIONS[project.status]]
    if members_form is None:
        members_form = MembersForm(members=[m.user_id for m in project.members])
    members_form.members.choices = [
        (u.id, f"{u.name} ({u.role.name})")
        for u in db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.name))
    ]
    return render_template(
        "projects/show.html",
        project=project,
        stats=stats,
        groups=groups,
        status_form=status_form,
        moves=_moves(project),
        status_labels=STATUS_LABELS,
        members_form=members_form,
    )


@bp.route("/<int:project_id>/edit", methods=["GET", "POST"])
@permission_required("project.manage")
def edit(project_id: int):
    project = services.get_visible(current_user, project_id)
    services.ensure_writable(project)
    form = ProjectForm(obj=project)
    if form.validate_on_submit():
        try:
            with attempt():
                services.update(project, _form_data(form))
        except DomainError as exc:
            _show_error(form, exc)
        else:
            flash(_("Project saved."), "success")
            return redirect(url_for("projects.show", project_id=project.id))
    return render_template("projects/form.html", form=form, project=project)


# What each move does, in the words the confirm dialog and page use: (button, question,
# what it means). Closing is for good (models.TRANSITIONS) and stops every change, vendors'
# payments and cash-out requests included (services.ensure_writable, redemption checks).
MOVES = {
    ACTIVE: (
        _l("Activate the project"),
        _l("Activate %(name)s?"),
        _l(
            "Vendors can take payments in it from then on. It cannot go back to draft; it can be "
            "closed later."
        ),
    ),
    CLOSED: (
        _l("Close the project"),
        _l("Close %(name)s for good?"),
        _l(
            "A closed project cannot be reopened. Nothing in it can change any more: nobody can "
            "be enrolled, funded or paid, vendors can no longer take payments, and they can no "
            "longer ask for what the project still owes them. Settle the vendors first."
        ),
    ),
}


def _moves(project) -> list[tuple[str, str, str, str]]:
    """(status, button, question, detail) for each move the project can make, in words."""
    return [
        (s, str(button), str(question) % {"name": project.name}, str(detail))
        for s in TRANSITIONS[project.status]
        for button, question, detail in (MOVES[s],)
    ]


@bp.post("/<int:project_id>/status")
@permission_required("project.manage")
def change_status(project_id: int):
    project = services.get_visible(current_user, project_id)
    form = StatusForm()
    form.status.choices = [(s, s) for s in TRANSITIONS[project.status]]
    if form.validate_on_submit():
        button, question, detail = MOVES[form.status.data]
        if not confirmation.given():
            return confirmation.page(
                str(question) % {"name": project.name},
                str(detail),
                yes=str(button),
                back=url_for("projects.show", project_id=project.id),
                danger=form.status.data == CLOSED,
            )
        services.change_status(project, form.status.data)
        flash(str(NOW[project.status]), "success")
    else:
        flash(_("Choose a status this project can move to."), "error")
    return redirect(url_for("projects.show", project_id=project.id))


@bp.post("/<int:project_id>/members")
@permission_required("project.manage")
def members(project_id: int):
    project = services.get_visible(current_user, project_id)
    form = MembersForm()
    form.members.choices = [(u.id, u.name) for u in db.session.scalars(select(User))]
    if form.validate_on_submit():
        try:
            with attempt():
                services.set_members(
                    project, set(form.members.data or ()), actor=current_user._get_current_object()
                )
        except Refused as exc:
            form.members.errors.append(str(exc))
            return _show_page(project, form), 400
        flash(_("Members saved."), "success")
    else:
        flash(_("Choose members from the list."), "error")
    return redirect(url_for("projects.show", project_id=project.id))

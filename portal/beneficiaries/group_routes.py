"""Group pages: list, create, members."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal import confirmation, inputs
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.beneficiaries import groups, reads, services
from portal.beneficiaries.forms import GroupForm
from portal.beneficiaries.models import Beneficiary, GroupMember
from portal.errors import DomainError
from portal.extensions import db
from portal.projects import services as projects
from portal.transactions import attempt

bp = Blueprint("groups", __name__, url_prefix="/groups")


@bp.get("/")
@permission_required("beneficiary.read")
def index():
    rows = db.session.scalars(groups.visible(current_user)).all()
    return render_template(
        "groups/index.html", groups=rows, counts=groups.member_counts([g.id for g in rows])
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required("beneficiary.manage")
def new():
    form = GroupForm()
    form.project_id.choices = [(p.id, p.name) for p in projects.open_projects(current_user)]
    if request.method == "GET" and inputs.id_arg("project"):
        form.project_id.data = inputs.id_arg("project")
    if form.validate_on_submit():
        try:
            with attempt():
                project = projects.get_visible(current_user, form.project_id.data)
                group = groups.create(project, form.name.data, form.purpose.data)
        except DomainError as exc:
            form.name.errors.append(str(exc))
        else:
            flash(_("Group %(group)s created.", group=group.name), "success")
            return redirect(url_for("groups.show", group_id=group.id))
    return render_template("groups/form.html", form=form)


@bp.get("/<int:group_id>")
@permission_required("beneficiary.read")
def show(group_id: int):
    group = groups.get_visible(current_user, group_id)
    page = db.paginate(
        select(Beneficiary)
        .join(GroupMember, GroupMember.beneficiary_id == Beneficiary.id)
        .where(GroupMember.group_id == group.id)
        .order_by(Beneficiary.ref),
        page=inputs.page_arg(),
        per_page=25,
        error_out=False,
    )
    show_pii = current_user.can("beneficiary.pii.read")
    body = render_template(
        "groups/show.html",
        group=group,
        page=page,
        show_pii=show_pii,
        remove_form=EmptyForm(),
    )
    if show_pii:
        reads.record(page.items, f"group {group.id}", project_id=group.project_id)
    return body


@bp.post("/<int:group_id>/members/<int:beneficiary_id>/remove")
@permission_required("beneficiary.manage")
def remove_member(group_id: int, beneficiary_id: int):
    group = groups.get_visible(current_user, group_id)
    person = services.get_visible(current_user, beneficiary_id)
    if EmptyForm().validate_on_submit():
        if not confirmation.given():
            return confirmation.page(
                _("Remove %(ref)s from the group %(group)s?", ref=person.ref, group=group.name),
                _(
                    "They get nothing from the group's next disbursements. "
                    "They stay in the project."
                ),
                yes=_("Remove from the group"),
                back=url_for("groups.show", group_id=group.id),
                danger=True,
            )
        groups.remove_member(group, person)
        flash(_("Removed from the group."), "success")
    return redirect(url_for("groups.show", group_id=group.id))

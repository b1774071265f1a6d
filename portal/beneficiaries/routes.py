"""Beneficiary pages: the list with search and filters, enrolment, detail, edit, assignment."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import confirmation, inputs
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.beneficiaries import groups, memberships, reads, selection, services
from portal.beneficiaries.forms import BeneficiaryForm, GroupPickForm, ProjectPickForm
from portal.beneficiaries.models import GENDER_LABELS, STATUS_LABELS, STATUSES, Beneficiary
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.i18n.formatting import number
from portal.imports import problems as row_problems
from portal.ledger import people
from portal.projects import services as projects
from portal.projects.models import Project
from portal.redirects import safe_next
from portal.timeutil import utcnow
from portal.transactions import attempt

bp = Blueprint("beneficiaries", __name__, url_prefix="/beneficiaries")


def show_pii() -> bool:
    return current_user.can("beneficiary.pii.read")


@bp.get("/")
@permission_required("beneficiary.read")
def index():
    params = services.ListQuery(
        q=inputs.text_arg("q"),
        project_id=inputs.id_arg("project"),
        group_id=inputs.id_arg("group"),
        status=inputs.choice_arg("status", STATUSES),
        sort=inputs.choice_arg("sort", services.SORTS, "newest"),
    )
    # One query for the page's personal data, not one per row.
    options = (selectinload(Beneficiary.pii),) if show_pii() else ()
    page = services.list_page(
        current_user,
        params,
        page=inputs.page_arg(),
        after=inputs.text_arg("after", 80),
        before=inputs.text_arg("before", 80),
        options=options,
    )
    # Links keep the search and filters; a page is a number or a row's sort values, so every
    # page has a URL that can be shared.
    kept = {k: request.args.get(k, "") for k in ("q", "project", "group", "status", "sort")}
    kept = {k: v for k, v in kept.items() if v}

    def link(arguments: dict | None) -> str | None:
        return None if arguments is None else url_for(".index", **kept, **arguments)

    in_projects, in_groups = memberships.of_people(current_user, page.items)
    all_groups = db.session.scalars(groups.visible(current_user)).all()
    body = render_template(
        "beneficiaries/index.html",
        page=page,
        in_projects=in_projects,
        in_groups=in_groups,
        open_groups=[g for g in all_groups if not g.project.is_closed],
        open_projects=projects.open_projects(current_user),
        selection_actions=selection.allowed_actions(current_user),
        list_url=request.full_path,
        previous_url=link(page.previous),
        next_url=link(page.next),
        first_url=link({}) if page.cursor or (page.number or 1) > 2 else None,
        params=params,
        statuses=STATUSES,
        status_labels=STATUS_LABELS,
        sorts=services.SORTS,
        sort_labels=services.SORT_LABELS,
        projects=db.session.scalars(projects.visible_projects(current_user)).all(),
        groups=all_groups,
        show_pii=show_pii(),
    )
    if show_pii():
        reads.record(page.items, "list", project_id=params.project_id)
    return body


def _form_values(form: BeneficiaryForm) -> dict:
    return {
        "name": form.name.data,
        "phone": form.phone.data,
        "national_id": form.national_id.data,
        "date_of_birth": form.date_of_birth.data,
        "location": form.location.data,
        "gender": form.gender.data,
        "language": form.language.data,
        "status": form.status.data,
        "retention_until": form.retention_until.data,
    }


def _iso_day(text: str | None) -> date | None:
    """A stored ISO date as a date, for the page's date filter; None if it is not one."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _field_error(form, exc: DomainError) -> Beneficiary | None:
    """Put the refusal under its field; returns the person it duplicates, if the user may see
    them (the page links to them)."""
    field = getattr(form, getattr(exc, "field", ""), None) or form.name
    field.errors = [*field.errors, row_problems.translated(exc)]
    duplicate_id = getattr(exc, "duplicate_id", None)
    if duplicate_id is None:
        return None
    try:
        return services.get_visible(current_user, duplicate_id)
    except NotFound:
        return None  # enrolled in a project the user does not see: say no more than that


@bp.route("/new", methods=["GET", "POST"])
@permission_required("beneficiary.manage", "beneficiary.pii.read")
def new():
    form = BeneficiaryForm()
    duplicate = None
    choices = [(p.id, p.name) for p in projects.open_projects(current_user)]
    if current_user.sees_all_projects:
        choices = [(0, _("— none yet —")), *choices]
    form.project_id.choices = choices
    if request.method == "GET" and inputs.id_arg("project"):
        form.project_id.data = inputs.id_arg("project")
    if form.validate_on_submit():
        project = None
        if form.project_id.data:
            project = projects.get_visible(current_user, form.project_id.data)
        elif not current_user.sees_all_projects:
            form.project_id.errors = [_("Choose the project this person is enrolled in.")]
        if not form.project_id.errors:
            values = _form_values(form)
            if form.consent.data == "yes":
                values["consent_at"] = utcnow()
            try:
                with attempt():
                    person = services.create(values, project=project)
            except DomainError as exc:
                duplicate = _field_error(form, exc)
            else:
                flash(_("Beneficiary %(ref)s enrolled.", ref=person.ref), "success")
                return redirect(url_for("beneficiaries.show", beneficiary_id=person.id))
    return render_template("beneficiaries/form.html", form=form, person=None, duplicate=duplicate)


@bp.get("/<int:beneficiary_id>")
@permission_required("beneficiary.read")
def show(beneficiary_id: int):
    person = services.get_visible(current_user, beneficiary_id)
    member_of = set(services.project_ids_of(person))
    open_projects = projects.open_projects(current_user)
    project_form = ProjectPickForm()
    project_form.project_id.choices = [
        (p.id, p.name) for p in open_projects if p.id not in member_of
    ]
    # Which other projects and groups the person is in is shown only for projects the user sees.
    visible = projects.visible_project_ids(current_user)
    shown = member_of if visible is None else member_of & visible
    person_groups = [
        g for g in groups.groups_of(person) if visible is None or g.project_id in visible
    ]
    in_groups = {g.id for g in person_groups}
    group_form = GroupPickForm()
    group_form.group_id.choices = [
        (g.id, f"{g.name} ({g.project.name})")
        for g in db.session.scalars(groups.visible(current_user))
        if g.id not in in_groups and not g.project.is_closed
    ]
    birth = person.pii.date_of_birth if show_pii() and person.pii else None
    body = render_template(
        "beneficiaries/show.html",
        person=person,
        show_pii=show_pii(),
        birth_day=_iso_day(birth),
        gender_labels=GENDER_LABELS,
        projects=db.session.scalars(select(Project).where(Project.id.in_(shown))).all(),
        groups=person_groups,
        project_form=project_form,
        group_form=group_form,
        remove_form=EmptyForm(),
        money=people.money_of(person.id, shown),
    )
    if show_pii():
        reads.record([person], "page")
    return body


@bp.route("/<int:beneficiary_id>/edit", methods=["GET", "POST"])
@permission_required("beneficiary.manage", "beneficiary.pii.read")
def edit(beneficiary_id: int):
    person = services.get_visible(current_user, beneficiary_id)
    form = BeneficiaryForm()
    duplicate = None
    form.project_id.choices = [(0, "")]
    if request.method == "GET":
        pii = person.pii
        form.name.data, form.phone.data = pii.name, pii.phone
        form.national_id.data, form.location.data = pii.national_id, pii.location
        if pii.date_of_birth:
            form.date_of_birth.data = date.fromisoformat(pii.date_of_birth)
        form.gender.data, form.language.data = person.gender, person.language
        form.status.data, form.retention_until.data = person.status, person.retention_until
        form.consent.data = "yes" if person.consent_at else "no"
        reads.record([person], "edit form")
    if form.validate_on_submit():
        values = _form_values(form)
        if form.consent.data == "yes" and not person.consent_at:
            values["consent_at"] = utcnow()
        try:
            with attempt():
                services.update(person, values)
                if form.consent.data == "no":
                    person.consent_at = None
        except DomainError as exc:
            duplicate = _field_error(form, exc)
        else:
            flash(_("Saved."), "success")
            return redirect(url_for("beneficiaries.show", beneficiary_id=person.id))
    return render_template("beneficiaries/form.html", form=form, person=person, duplicate=duplicate)


@bp.post("/<int:beneficiary_id>/projects")
@permission_required("beneficiary.manage")
def add_project(beneficiary_id: int):
    person = services.get_visible(current_user, beneficiary_id)
    form = ProjectPickForm()
    form.project_id.choices = [(p.id, p.name) for p in projects.open_projects(current_user)]
    if form.validate_on_submit():
        services.add_to_project(person, projects.get_visible(current_user, form.project_id.data))
        flash(_("Added to the project."), "success")
    return redirect(url_for("beneficiaries.show", beneficiary_id=person.id))


@bp.post("/<int:beneficiary_id>/projects/<int:project_id>/remove")
@permission_required("beneficiary.manage")
def remove_project(beneficiary_id: int, project_id: int):
    person = services.get_visible(current_user, beneficiary_id)
    project = projects.get_visible(current_user, project_id)
    if EmptyForm().validate_on_submit():
        if not confirmation.given():
            return confirmation.page(
                _("Remove %(ref)s from %(project)s?", ref=person.ref, project=project.name),
                _(
                    "They leave the project's groups and lists and get nothing from its next "
                    "disbursements. Their record and what they have received are kept."
                ),
                yes=_("Remove from the project"),
                back=url_for("beneficiaries.show", beneficiary_id=person.id),
                danger=True,
            )
        services.remove_from_project(person, project)
        flash(_("Removed from the project."), "success")
    return redirect(url_for("beneficiaries.show", beneficiary_id=person.id))


@bp.post("/<int:beneficiary_id>/groups")
@permission_required("beneficiary.manage")
def add_group(beneficiary_id: int):
    person = services.get_visible(current_user, beneficiary_id)
    form = GroupPickForm()
    form.group_id.choices = [
        (g.id, g.name) for g in db.session.scalars(groups.visible(current_user))
    ]
    if form.validate_on_submit():
        group = groups.get_visible(current_user, form.group_id.data)
        groups.add_members(group, [person])
        flash(_("Added to group %(group)s.", group=group.name), "success")
    return redirect(url_for("beneficiaries.show", beneficiary_id=person.id))


def _list_url() -> str:
    return safe_next(request.form.get("next"), url_for(".index"), under="/beneficiaries/")


@bp.post("/selection")
@permission_required("beneficiary.read")
def selection_action():
    """Add the people chosen on the list to a group or project, remove them (after a
    confirmation), or give them new cards; then say what happened to each."""
    back = _list_url()
    action = request.form.get("action", "")
    if not EmptyForm().validate_on_submit():
        flash(_("The form expired: choose the people again."), "error")
        return redirect(back)
    try:
        selection.check_allowed(current_user, action)
        ids = selection.parse_ids(request.form.getlist("ids"))
        target = selection.parse_target(current_user, action, request.form.get("target", ""))
    except DomainError as exc:
        flash(str(exc), "error")
        return redirect(back)
    chosen = selection.people(current_user, ids)
    if action == "remove" and request.form.get("confirmed") != "yes":
        body = render_template(
            "beneficiaries/selection_confirm.html",
            chosen=chosen,
            target=target,
            action=action,
            back=back,
            show_pii=show_pii(),
        )
        if show_pii():
            reads.record([p for _, p in chosen if p], "selection")
        return body
    result = selection.apply(current_user, action, target, chosen)
    if not result.not_done:
        flash(
            ngettext(
                "Done for the %(count)s person chosen.",
                "Done for all %(count)s chosen.",
                result.done,
                count=number(result.done),
            ),
            "success",
        )
    body = render_template(
        "beneficiaries/selection_result.html", result=result, back=back, show_pii=show_pii()
    )
    if show_pii():
        reads.record([o.person for o in result.outcomes if o.person], "selection")
    return body

"""Staff pages for grievances: the list with filters, one case with its thread, and the form
on a beneficiary's page."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import inputs
from portal.accounts.guards import permission_required
from portal.beneficiaries import services as beneficiaries
from portal.beneficiaries.models import Beneficiary
from portal.errors import DomainError, ValidationFailed
from portal.extensions import db
from portal.grievances import services
from portal.grievances.forms import EditForm, GrievanceForm, NoteForm, StatusForm
from portal.grievances.models import (
    PRIORITIES,
    SOURCES,
    STATUS_LABELS,
    STATUSES,
    TRANSITIONS,
    TYPES,
    Grievance,
)
from portal.projects import services as projects
from portal.projects.models import Project
from portal.timeutil import utcnow
from portal.transactions import attempt
from portal.vendors.models import Vendor

bp = Blueprint("grievances", __name__, url_prefix="/grievances")
PAGE_SIZE = 100


def _filters() -> services.Filters:
    assignee = request.args.get("assignee", "")
    return services.Filters(
        status=inputs.choice_arg("status", STATUSES) or "",
        type=inputs.choice_arg("type", tuple(TYPES)) or "",
        priority=inputs.choice_arg("priority", tuple(PRIORITIES)) or "",
        assignee_id=current_user.id if assignee == "me" else inputs.id_arg("assignee"),
        unassigned=assignee == "none",
        project_id=inputs.id_arg("project"),
        overdue=request.args.get("overdue") == "1",
    )


def show_text() -> bool:
    """What people wrote may name anyone: shown to those who may see personal data."""
    return current_user.can("beneficiary.pii.read")


def _labels(rows: list[Grievance]) -> dict:
    return {
        "users": services.user_names(
            [g.assignee_id for g in rows] + [g.created_by_id for g in rows]
        ),
        "projects": dict(
            db.session.execute(
                db.select(Project.id, Project.name).where(
                    Project.id.in_({g.project_id for g in rows if g.project_id})
                )
            ).all()
        ),
        "people": dict(
            db.session.execute(
                db.select(Beneficiary.id, Beneficiary.ref).where(
                    Beneficiary.id.in_({g.beneficiary_id for g in rows if g.beneficiary_id})
                )
            ).all()
        ),
    }


def _page(query, after: int | None, before: int | None) -> tuple[list[Grievance], dict]:
    """One page of the list, newest first, found by the id of the row it starts after or ends
    before (keyset: a deep page costs what the first does); the cursors of its neighbours."""
    if before is not None:
        rows = db.session.scalars(
            query.where(Grievance.id > before)
            .order_by(None)
            .order_by(Grievance.id.asc())
            .limit(PAGE_SIZE + 1)
        ).all()
        more = len(rows) > PAGE_SIZE
        rows = list(reversed(rows[:PAGE_SIZE]))
        cursors = {"after": rows[-1].id if rows else None, "before": rows[0].id if more else None}
        return rows, cursors
    if after is not None:
        query = query.where(Grievance.id < after)
    rows = db.session.scalars(query.limit(PAGE_SIZE + 1)).all()
    more = len(rows) > PAGE_SIZE
    rows = list(rows[:PAGE_SIZE])
    cursors = {
        "after": rows[-1].id if more and rows else None,
        "before": rows[0].id if after is not None and rows else None,
    }
    return rows, cursors


def _page_url(**cursor) -> str:
    """This list with the same filters, at another page."""
    args = {k: v for k, v in request.args.items() if k not in ("after", "before") and v}
    return url_for("grievances.index", **args, **cursor)


@bp.get("/")
@permission_required("grievances.read")
def index():
    filters = _filters()
    today = utcnow().date()
    after, before = inputs.id_arg("after"), inputs.id_arg("before")
    rows, cursors = _page(services.search(current_user, filters, today), after, before)
    assignee = request.args.get("assignee", "")
    paged = after is not None or before is not None
    return render_template(
        "grievances/index.html",
        grievances=rows,
        filters=filters,
        filtered=any(v for k, v in request.args.items() if k not in ("after", "before")),
        assignee=assignee,
        labels=_labels(rows),
        today=today,
        projects=db.session.scalars(projects.visible_projects(current_user)).all(),
        staff=_staff_choices(),
        statuses=STATUS_LABELS,
        types=TYPES,
        priorities=PRIORITIES,
        page_size=PAGE_SIZE,
        next_url=_page_url(after=cursors["after"]) if cursors["after"] else None,
        previous_url=_page_url(before=cursors["before"]) if cursors["before"] else None,
        first_url=_page_url() if paged else None,
    )


def _staff_choices() -> list[tuple[int, str]]:
    """People a list may be filtered by: whoever holds a grievance the user sees."""
    ids = db.session.scalars(
        services.visible(current_user)
        .with_only_columns(Grievance.assignee_id)
        .where(Grievance.assignee_id.is_not(None))
        .distinct()
    ).all()
    return sorted(services.user_names(ids).items(), key=lambda item: item[1])


def _edit_form(grievance: Grievance, formdata=None) -> EditForm:
    form = EditForm(formdata=formdata, obj=None if formdata else grievance)
    form.assignee_id.choices = [(None, _("Nobody yet"))] + [
        (u.id, u.name) for u in services.assignable(grievance)
    ]
    return form


def _status_form(grievance: Grievance) -> StatusForm:
    form = StatusForm()
    form.status.choices = [(s, STATUS_LABELS[s]) for s in TRANSITIONS[grievance.status]]
    return form


def _detail(grievance: Grievance, *, edit=None, status=None, note=None, code=200):
    person = (
        db.session.get(Beneficiary, grievance.beneficiary_id) if grievance.beneficiary_id else None
    )
    vendor = db.session.get(Vendor, grievance.vendor_id) if grievance.vendor_id else None
    notes = grievance.notes
    return (
        render_template(
            "grievances/show.html",
            g=grievance,
            person=person,
            vendor=vendor,
            notes=notes,
            names=services.user_names(
                [n.author_id for n in notes] + [grievance.assignee_id, grievance.created_by_id]
            ),
            project=db.session.get(Project, grievance.project_id) if grievance.project_id else None,
            show_text=show_text(),
            edit_form=edit or _edit_form(grievance),
            status_form=status or _status_form(grievance),
            note_form=note or NoteForm(),
            statuses=STATUS_LABELS,
            types=TYPES,
            priorities=PRIORITIES,
            sources=SOURCES,
            today=utcnow().date(),
        ),
        code,
    )


@bp.get("/<int:grievance_id>")
@permission_required("grievances.read")
def show(grievance_id: int):
    return _detail(services.get_visible(current_user, grievance_id))


def _field_errors(form, exc: DomainError) -> None:
    if isinstance(exc, ValidationFailed):
        for name, message in exc.fields.items():
            field = getattr(form, name, None)
            if field is not None:
                field.errors = [*field.errors, message]
                continue
            form.form_errors.append(message)
    else:
        form.form_errors.append(str(exc))


def _submit(grievance: Grievance, form, key: str, step, done, anchor: str | None = None):
    """Run ``step`` for a valid form in a savepoint; on success flash ``done()`` and go back
    to the case, else show the case again with the form's errors and what was typed."""
    if form.validate():
        try:
            with attempt():
                step()
        except DomainError as exc:
            _field_errors(form, exc)
        else:
            flash(done(), "success")
            return redirect(url_for("grievances.show", grievance_id=grievance.id, _anchor=anchor))
    db.session.refresh(grievance)
    return _detail(grievance, code=422, **{key: form})


@bp.post("/<int:grievance_id>/edit")
@permission_required("grievances.manage")
def edit(grievance_id: int):
    grievance = services.get_visible(current_user, grievance_id)
    form = _edit_form(grievance, request.form)
    return _submit(
        grievance,
        form,
        "edit",
        lambda: services.update(
            grievance,
            type_=form.type.data,
            priority=form.priority.data,
            due_on=form.due_on.data,
            assignee_id=form.assignee_id.data,
            actor=current_user,
        ),
        lambda: _("Grievance %(ref)s saved.", ref=grievance.ref),
    )


@bp.post("/<int:grievance_id>/status")
@permission_required("grievances.manage")
def status(grievance_id: int):
    grievance = services.get_visible(current_user, grievance_id)
    form = _status_form(grievance)
    return _submit(
        grievance,
        form,
        "status",
        lambda: services.change_status(grievance, form.status.data, current_user),
        lambda: _(
            "Grievance %(ref)s is now %(status)s.",
            ref=grievance.ref,
            status=str(STATUS_LABELS[grievance.status]).lower(),
        ),
    )


@bp.post("/<int:grievance_id>/notes")
@permission_required("grievances.manage")
def add_note(grievance_id: int):
    grievance = services.get_visible(current_user, grievance_id)
    form = NoteForm()
    return _submit(
        grievance,
        form,
        "note",
        lambda: services.add_note(grievance, form.body.data, current_user),
        lambda: _("Note added."),
        anchor="thread",
    )


@bp.route("/beneficiary/<int:beneficiary_id>/new", methods=["GET", "POST"])
@permission_required("grievances.manage", "beneficiary.read")
def new_for_beneficiary(beneficiary_id: int):
    person = beneficiaries.get_visible(current_user, beneficiary_id)
    form = GrievanceForm()
    if form.validate_on_submit():
        try:
            with attempt():
                grievance = services.open_grievance(
                    "staff",
                    form.description.data,
                    type_=form.type.data,
                    priority=form.priority.data,
                    beneficiary=person,
                    created_by=current_user,
                    due_on=form.due_on.data,
                )
        except DomainError as exc:
            _field_errors(form, exc)
        else:
            flash(
                _(
                    "Grievance %(ref)s recorded; the person is sent its reference by SMS.",
                    ref=grievance.ref,
                ),
                "success",
            )
            return redirect(url_for("grievances.show", grievance_id=grievance.id))
    return (
        render_template("grievances/new.html", form=form, person=person),
        422 if form.errors or form.form_errors else 200,
    )


@bp.app_template_global("grievances_of")
def grievances_of(person: Beneficiary) -> list[Grievance]:
    """The person's grievances the signed-in user may see, newest first (their page)."""
    return list(
        db.session.scalars(
            services.search(
                current_user, services.Filters(beneficiary_id=person.id), utcnow().date()
            ).limit(20)
        )
    )


@bp.app_template_global("grievance_status_labels")
def grievance_status_labels() -> dict:
    """The statuses' names in the page's language, for pages outside this blueprint."""
    return STATUS_LABELS

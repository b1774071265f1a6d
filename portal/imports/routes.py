"""Import pages: upload, map columns, dry run with live progress and report, commit."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal import inputs
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.beneficiaries.models import BeneficiaryGroup
from portal.errors import DomainError, ValidationFailed
from portal.extensions import db
from portal.files import storage
from portal.imports import duplicates, fields, held, live, services, template
from portal.imports import problems as row_problems
from portal.imports.forms import CommitForm, UploadForm
from portal.imports.models import ANALYSING, COMMITTING
from portal.projects import services as projects
from portal.transactions import attempt

bp = Blueprint("imports", __name__, url_prefix="/imports")
MANAGE = ("beneficiary.manage", "beneficiary.pii.read")


@bp.get("/")
@permission_required(*MANAGE)
def index():
    page = db.paginate(
        services.visible(current_user),
        page=inputs.page_arg(),
        per_page=25,
        error_out=False,
    )
    return render_template("imports/index.html", page=page)


@bp.get("/template.<ext>")
@permission_required(*MANAGE)
def download_template(ext: str):
    if ext == "csv":
        body, mime = template.template_csv(), "text/csv"
    elif ext == "xlsx":
        body = template.template_xlsx()
        mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        return redirect(url_for("imports.index"))
    return Response(
        body,
        mimetype=mime,
        headers={"Content-Disposition": f"attachment; filename=beneficiaries-template.{ext}"},
    )


def _groups_for(project_ids: list[int]) -> list[BeneficiaryGroup]:
    return list(
        db.session.scalars(
            select(BeneficiaryGroup)
            .where(BeneficiaryGroup.project_id.in_(project_ids))
            .order_by(BeneficiaryGroup.name)
        )
    )


@bp.route("/new", methods=["GET", "POST"])
@permission_required(*MANAGE)
def new():
    form = UploadForm()
    open_projects = projects.open_projects(current_user)
    form.project_id.choices = [(p.id, p.name) for p in open_projects]
    groups = _groups_for([p.id for p in open_projects])
    form.group_id.choices = [(0, _("— no group —"))] + [
        (g.id, f"{g.name} ({g.project.name})") for g in groups
    ]
    if request.method == "GET":
        form.project_id.data = inputs.id_arg("project")
    kept = held.find(form.kept.data, current_user)
    new_file = form.file.data if held.chosen(form.file.data) else None
    valid = form.validate_on_submit()
    if form.is_submitted() and new_file is None and kept is None:
        form.file.errors = [*form.file.errors, _("Choose a file to upload.")]
        valid = False
    if valid:
        project = projects.get_visible(current_user, form.project_id.data)
        group = next((g for g in groups if g.id == form.group_id.data), None)
        if group is not None and group.project_id != project.id:
            form.group_id.errors = [_("Choose a group of the same project.")]
        else:
            try:
                with attempt():
                    source = services.source_named(
                        form.source.data, project=project, user=current_user
                    )
                    batch = services.create_batch(
                        new_file,
                        project=project,
                        user=current_user,
                        group=group,
                        source=source,
                        kept=None if new_file is not None else kept,
                    )
            except ValidationFailed as exc:
                if "source" in exc.fields:
                    form.source.errors = [exc.fields["source"]]
                else:
                    form.file.errors = [str(exc)]
            except DomainError as exc:
                form.file.errors = [str(exc)]
            else:
                return redirect(url_for("imports.mapping", batch_id=batch.id))
    if form.is_submitted() and not form.file.errors:
        # Another field was wrong: keep the chosen file for the next attempt.
        if new_file is not None:
            kept_now = held.hold(new_file, current_user)
            kept = kept_now[0] if kept_now else None
        form.kept.data = held.token_for(kept) if kept is not None else ""
    else:
        form.kept.data = ""
    return render_template(
        "imports/new.html",
        form=form,
        kept=kept if form.kept.data else None,
        sources=[s.name for s in services.sources(current_user)],
    )


@bp.route("/<int:batch_id>/mapping", methods=["GET", "POST"])
@permission_required(*MANAGE)
def mapping(batch_id: int):
    batch = services.get_visible(current_user, batch_id)
    problems: list[str] = []
    chosen = batch.mapping
    if request.method == "POST":
        if not EmptyForm().validate_on_submit():
            problems = ["The form expired; try again."]
        else:
            chosen = {
                header: request.form.get(f"map-{index}", "")
                for index, header in enumerate(batch.headers)
            }
            try:
                with attempt():
                    problems = services.set_mapping(batch, chosen)
                    if not problems:
                        services.start_analysis(batch, current_user.id)
            except DomainError as exc:  # another request moved the import on meanwhile
                flash(str(exc), "error")
                return redirect(url_for("imports.show", batch_id=batch.id))
            if not problems:
                return redirect(url_for("imports.show", batch_id=batch.id))
    return render_template(
        "imports/mapping.html",
        batch=batch,
        chosen=chosen,
        catalogue=fields.FIELDS,
        field_label=row_problems.field_label,
        problems=problems,
        form=EmptyForm(),
    ), (400 if problems else 200)


@bp.post("/<int:batch_id>/sheet")
@permission_required(*MANAGE)
def sheet(batch_id: int):
    batch = services.get_visible(current_user, batch_id)
    if EmptyForm().validate_on_submit():
        try:
            with attempt():
                services.choose_sheet(batch, request.form.get("sheet", ""))
        except DomainError as exc:
            flash(str(exc), "error")
    return redirect(url_for("imports.mapping", batch_id=batch.id))


@bp.get("/<int:batch_id>")
@permission_required(*MANAGE)
def show(batch_id: int):
    batch = services.get_visible(current_user, batch_id)
    preview = batch.errors_preview
    return render_template(
        "imports/show.html",
        batch=batch,
        # Each problem in the reader's language (kept as a code and values; older: English).
        report=[
            {**e, "text": row_problems.sentence(e), "label": row_problems.field_label(e["field"])}
            for e in preview
        ],
        duplicates=duplicates.people_of(current_user, preview),
        running=batch.status in (ANALYSING, COMMITTING),
        commit_form=CommitForm(),
        action_form=EmptyForm(),
        state=live.serialize(batch),
    )


@bp.get("/<int:batch_id>/errors.csv")
@permission_required(*MANAGE)
def errors(batch_id: int):
    batch = services.get_visible(current_user, batch_id)
    stored = db.session.get(storage.StoredFile, batch.errors_file_id or "")
    if stored is None:
        flash(_("This import has no error report."), "info")
        return redirect(url_for("imports.show", batch_id=batch.id))
    return Response(
        storage.iter_plain(stored),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={stored.filename}"},
    )


@bp.post("/<int:batch_id>/commit")
@permission_required(*MANAGE)
def commit(batch_id: int):
    batch = services.get_visible(current_user, batch_id)
    form = CommitForm()
    if form.validate_on_submit():
        try:
            with attempt():
                services.start_commit(batch, current_user, form.mode.data)
        except DomainError as exc:
            flash(str(exc), "error")
    return redirect(url_for("imports.show", batch_id=batch.id))


@bp.post("/<int:batch_id>/analyse")
@permission_required(*MANAGE)
def analyse(batch_id: int):
    batch = services.get_visible(current_user, batch_id)
    if EmptyForm().validate_on_submit():
        try:
            with attempt():
                services.start_analysis(batch, current_user.id)
        except DomainError as exc:
            flash(str(exc), "error")
    return redirect(url_for("imports.show", batch_id=batch.id))


@bp.post("/<int:batch_id>/discard")
@permission_required(*MANAGE)
def discard(batch_id: int):
    batch = services.get_visible(current_user, batch_id)
    if EmptyForm().validate_on_submit():
        try:
            with attempt():
                services.discard(batch)
        except DomainError as exc:
            flash(str(exc), "error")
            return redirect(url_for("imports.show", batch_id=batch.id))
        flash(_("The import was discarded and its file deleted."), "success")
    return redirect(url_for("imports.index"))

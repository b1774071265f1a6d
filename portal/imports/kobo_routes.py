"""KoboToolbox pages (connect a form, pull) and the webhook Kobo's REST service posts to."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from wtforms import PasswordField, SelectField, StringField, URLField
from wtforms.validators import URL, DataRequired, Length, Optional, Regexp, ValidationError

from portal import inputs
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required, public
from portal.beneficiaries.models import BeneficiaryGroup
from portal.errors import DomainError, NotFound
from portal.extensions import csrf, db, limiter
from portal.forms import Form
from portal.imports import kobo, services
from portal.imports.models import KOBO, ImportBatch, ImportSource, KoboSubmission
from portal.jobs import dispatch
from portal.jobs.kinds import KOBO_PULL
from portal.projects import services as projects
from portal.transactions import attempt
from portal.web import problem

bp = Blueprint("kobo", __name__)
MANAGE = ("beneficiary.manage", "beneficiary.pii.read")


def allowed_server(form, field) -> None:
    """The API token goes to this server: only to one on the allow-list (checked again when
    pulling, as DNS can change)."""
    try:
        kobo.check_server_url((field.data or "").strip().rstrip("/"))
    except kobo.KoboError as exc:
        raise ValidationError(str(exc)) from None


class KoboForm(Form):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    server_url = URLField(
        _l("KoboToolbox server"),
        default="https://kf.kobotoolbox.org",
        validators=[DataRequired(), URL(require_tld=False), Length(max=255), allowed_server],
        description=_l("Only the servers named on the Settings page are accepted."),
    )
    asset_uid = StringField(
        _l("Form asset uid"),
        validators=[
            DataRequired(),
            Regexp(r"^[A-Za-z0-9]{6,64}$", message=_l("Letters and digits.")),
        ],
        description=_l("In the form's URL on KoboToolbox: the part after …/forms/"),
    )
    token = PasswordField(
        _l("API token"),
        validators=[Optional(), Length(max=100)],
        description=_l("From your KoboToolbox account settings. Left empty, the saved one stays."),
    )
    project_id = SelectField(_l("Import into project"), coerce=int)
    group_id = SelectField(_l("And into group"), coerce=int, validators=[Optional()])


def _kobo_sources():
    return db.session.scalars(services.visible_sources(current_user, KOBO)).all()


def _visible_source(source_id: int) -> ImportSource:
    source = db.session.get(ImportSource, source_id)
    if source is None or source.kind != KOBO or source.project_id is None:
        raise NotFound(_("No such KoboToolbox form."))
    projects.get_visible(current_user, source.project_id)  # scope check
    return source


def _fill_choices(form: KoboForm) -> list[BeneficiaryGroup]:
    open_projects = projects.open_projects(current_user)
    form.project_id.choices = [(p.id, p.name) for p in open_projects]
    groups = db.session.scalars(
        select(BeneficiaryGroup).where(
            BeneficiaryGroup.project_id.in_([p.id for p in open_projects])
        )
    ).all()
    form.group_id.choices = [(0, _("— no group —"))] + [(g.id, g.name) for g in groups]
    return list(groups)


@bp.get("/imports/kobo/")
@permission_required(*MANAGE)
def index():
    return render_template("imports/kobo_index.html", sources=_kobo_sources())


@bp.route("/imports/kobo/new", methods=["GET", "POST"], defaults={"source_id": None})
@bp.route("/imports/kobo/<int:source_id>", methods=["GET", "POST"])
@permission_required(*MANAGE)
def edit(source_id: int | None):
    source = None if source_id is None else _visible_source(source_id)
    form = KoboForm(obj=source)
    if request.method == "GET" and source is not None:
        form.server_url.data, form.asset_uid.data = source.kobo_server_url, source.kobo_asset_uid
        form.group_id.data = source.group_id or 0
    groups = _fill_choices(form)
    if form.validate_on_submit():
        project = projects.get_visible(current_user, form.project_id.data)
        group = next((g for g in groups if g.id == form.group_id.data), None)
        taken = db.session.scalar(
            select(ImportSource.id).where(ImportSource.name == form.name.data)
        )
        if group is not None and group.project_id != project.id:
            form.group_id.errors = [_("Choose a group of the same project.")]
        elif taken and (source is None or taken != source.id):
            form.name.errors = [_("A source with this name exists.")]
        elif source is None and not form.token.data:
            form.token.errors = [_("The API token is needed to pull submissions.")]
        else:
            created = source is None
            source = source or ImportSource(kind=KOBO)
            source.name = form.name.data.strip()
            source.kobo_server_url = form.server_url.data.strip().rstrip("/")
            source.kobo_asset_uid = form.asset_uid.data
            if form.token.data:
                source.kobo_token = form.token.data
            source.project_id, source.group_id = project.id, group.id if group else None
            db.session.add(source)
            db.session.flush()
            secret = kobo.new_webhook_secret(source) if created else None
            if secret:
                flash(
                    _(
                        "Connected. Give KoboToolbox's REST service this secret as the "
                        "password (user name: portal). It is shown only now: %(secret)s",
                        secret=secret,
                    ),
                    "success",
                )
            else:
                flash(_("Saved."), "success")
            return redirect(url_for("kobo.show", source_id=source.id))
    return render_template("imports/kobo_form.html", form=form, source=source)


@bp.get("/imports/kobo/<int:source_id>/status")
@permission_required(*MANAGE)
def show(source_id: int):
    source = _visible_source(source_id)
    # The batches of projects the user sees: a source may have fed another project before.
    batches = db.session.scalars(
        projects.scope(select(ImportBatch), ImportBatch.project_id, current_user)
        .where(ImportBatch.source_id == source.id)
        .order_by(ImportBatch.id.desc())
        .limit(20)
    ).all()
    receipts = db.session.scalars(
        select(KoboSubmission)
        .where(KoboSubmission.source_id == source.id)
        .order_by(KoboSubmission.id.desc())
        .limit(20)
    ).all()
    return render_template(
        "imports/kobo_show.html",
        source=source,
        batches=batches,
        receipts=receipts,
        webhook_url=url_for("kobo.webhook", source_id=source.id, _external=True),
        form=EmptyForm(),
        pull_job_id=inputs.id_arg("job"),
    )


@bp.post("/imports/kobo/<int:source_id>/pull")
@permission_required(*MANAGE)
def pull(source_id: int):
    source = _visible_source(source_id)
    if EmptyForm().validate_on_submit():
        job = dispatch.enqueue(
            KOBO_PULL.name,
            {"source_id": source.id},
            project_id=source.project_id,
            created_by_id=current_user.id,
        )
        flash(_("Pulling the form's new submissions; they will appear below as an import."), "info")
        return redirect(url_for("kobo.show", source_id=source.id, job=job.id))
    return redirect(url_for("kobo.show", source_id=source.id))


@bp.post("/imports/kobo/<int:source_id>/secret")
@permission_required(*MANAGE)
def rotate_secret(source_id: int):
    source = _visible_source(source_id)
    if EmptyForm().validate_on_submit():
        secret = kobo.new_webhook_secret(source)
        flash(
            _(
                "New webhook secret (the old one stops working now; shown only once): %(secret)s",
                secret=secret,
            ),
            "success",
        )
    return redirect(url_for("kobo.show", source_id=source.id))


def _offered_secret() -> str | None:
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        return auth.password
    return request.headers.get("X-Portal-Secret")


@bp.post("/api/kobo/<int:source_id>/submissions")
@public  # authenticated by the source's shared secret, not by a staff session
@csrf.exempt
@limiter.limit("600 per minute")
def webhook(source_id: int):
    source = db.session.get(ImportSource, source_id)
    if source is None or source.kind != KOBO or not kobo.secret_matches(source, _offered_secret()):
        # One answer for an unknown source and a wrong secret.
        return problem(401, "Unknown source or wrong secret.")
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return problem(400, "Send one submission as a JSON object.")
    try:
        with attempt():
            receipt, first = kobo.import_submission(source, payload)
    except DomainError as exc:
        return problem(exc.status, str(exc))
    body = {"uuid": receipt.uuid, "outcome": receipt.outcome, "message": receipt.message}
    if not first:
        body["repeat"] = True
    status = 201 if first and receipt.outcome == "imported" else 200
    if receipt.outcome == "invalid":
        status = 422
    return jsonify(body), status

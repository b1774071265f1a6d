"""Staff pages of payouts: the list, a payout, bank batches and their files, the provider's
settings; and the mobile-money provider's callback (public, verified by a status query)."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import select

from portal import inputs
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required, public
from portal.errors import DomainError, Forbidden, NotFound, ValidationFailed
from portal.extensions import csrf, db, limiter
from portal.payouts import bankfile, batches, methods, momo, sending, services
from portal.payouts.forms import MethodForm, MomoSettingsForm, OverrideForm
from portal.payouts.models import (
    BATCH_LABELS,
    BOOKS_LABELS,
    KIND_LABELS,
    STATUS_LABELS,
    STATUSES,
    Payout,
    PayoutBatch,
)
from portal.projects import services as projects
from portal.projects.models import Project
from portal.reconciliation.chainside import chain_side
from portal.settings import services as settings
from portal.transactions import attempt
from portal.vendors import services as vendors
from portal.vendors.models import Vendor
from portal.web import problem

bp = Blueprint("payouts", __name__, url_prefix="/payouts")
callback_bp = Blueprint("payout_callbacks", __name__)


def _source_label(payout: Payout) -> str:
    """What the payout pays for, in words: a settlement (its second try is "settlement.2")."""
    source = payout.source_type or ""
    if source == "settlement" or source.startswith("settlement."):
        return _("settlement")
    if source == "manual":
        return _("manual")
    return source


def _visible_projects() -> list[Project]:
    return list(db.session.scalars(projects.visible_projects(current_user).order_by(Project.name)))


@bp.get("/")
@permission_required("payout.read")
def index():
    project_id = inputs.id_arg("project")
    status = inputs.choice_arg("status", STATUSES)
    query = services.visible(current_user)
    if project_id:
        query = query.where(Payout.project_id == project_id)
    if status:
        query = query.where(Payout.status == status)
    rows = db.session.scalars(query.order_by(Payout.id.desc()).limit(200)).all()
    names = dict(
        db.session.execute(
            select(Vendor.id, Vendor.name).where(Vendor.id.in_({p.vendor_id for p in rows}))
        ).all()
    )
    return render_template(
        "payouts/index.html",
        payouts=rows,
        vendor_names=names,
        counts=services.status_counts(current_user, project_id),
        projects=_visible_projects(),
        project_id=project_id,
        status=status,
        statuses=STATUSES,
        status_labels=STATUS_LABELS,
        books_labels=BOOKS_LABELS,
        kinds=KIND_LABELS,
        chain=chain_side(rows),
    )


@bp.get("/<int:payout_id>")
@permission_required("payout.read")
def show(payout_id: int):
    payout = services.get_visible(current_user, payout_id)
    return render_template(
        "payouts/show.html",
        payout=payout,
        vendor=db.session.get(Vendor, payout.vendor_id),
        project=db.session.get(Project, payout.project_id),
        batch=db.session.get(PayoutBatch, payout.batch_id) if payout.batch_id else None,
        masked=methods.mask(payout.payee_account),
        kinds=KIND_LABELS,
        status_labels=STATUS_LABELS,
        books_labels=BOOKS_LABELS,
        source_label=_source_label(payout),
        form=OverrideForm(),
        chain=chain_side([payout]).get(payout.id),
    )


@bp.post("/<int:payout_id>/override")
@permission_required("payout.read", "payout.override")
def override(payout_id: int):
    from portal.reconciliation import services as reconciliation

    payout = services.get_visible(current_user, payout_id)
    form = OverrideForm()
    if form.validate_on_submit():
        try:
            with attempt():
                reconciliation.override(payout, form.outcome.data, form.reason.data, current_user)
        except ValidationFailed as exc:
            form.reason.errors.append(exc.fields.get("reason", str(exc)))
        except DomainError as exc:
            form.outcome.errors.append(str(exc))
        else:
            flash(
                _("Payout marked %(status)s.", status=STATUS_LABELS[form.outcome.data].lower()),
                "success",
            )
            return redirect(url_for("payouts.show", payout_id=payout.id))
    return render_template(
        "payouts/show.html",
        payout=payout,
        vendor=db.session.get(Vendor, payout.vendor_id),
        project=db.session.get(Project, payout.project_id),
        batch=db.session.get(PayoutBatch, payout.batch_id) if payout.batch_id else None,
        masked=methods.mask(payout.payee_account),
        kinds=KIND_LABELS,
        status_labels=STATUS_LABELS,
        books_labels=BOOKS_LABELS,
        source_label=_source_label(payout),
        form=form,
        chain=chain_side([payout]).get(payout.id),
    ), 400


# --------------------------------------------------------------------------- bank batches


def _visible_batch(batch_id: int) -> PayoutBatch:
    batch = db.session.scalar(
        projects.scope(select(PayoutBatch), PayoutBatch.project_id, current_user).where(
            PayoutBatch.id == batch_id
        )
    )
    if batch is None:
        raise NotFound(_("No such batch."))
    return batch


@bp.get("/batches")
@permission_required("payout.read")
def batch_list():
    visible = _visible_projects()
    rows = db.session.scalars(
        projects.scope(select(PayoutBatch), PayoutBatch.project_id, current_user)
        .order_by(PayoutBatch.id.desc())
        .limit(100)
    ).all()
    return render_template(
        "payouts/batches.html",
        batches=rows,
        waiting=[(p, batches.waiting(p.id)) for p in visible],
        names={p.id: p.name for p in visible},
        form=EmptyForm(),
        batch_labels=BATCH_LABELS,
    )


@bp.post("/batches")
@permission_required("payout.read", "payout.manage")
def build_batch():
    project_id = inputs.parse_id(request.form.get("project_id", ""))
    if project_id is None:
        raise NotFound(_("No such project."))
    project = projects.get_visible(current_user, project_id)
    form = EmptyForm()
    if not form.validate_on_submit():
        raise DomainError(_("The form expired. Reload the page and try again."))
    with attempt():
        batch = batches.build(project.id, current_user.id)
    flash(
        _(
            "Batch %(reference)s built. Download its file and give it to the bank.",
            reference=batch.reference,
        ),
        "success",
    )
    return redirect(url_for("payouts.batch", batch_id=batch.id))


@bp.get("/batches/<int:batch_id>")
@permission_required("payout.read")
def batch(batch_id: int):
    found = _visible_batch(batch_id)
    rows = batches.payouts_of(found.id)
    return render_template(
        "payouts/batch.html",
        batch=found,
        payouts=rows,
        masked={p.id: methods.mask(p.payee_account) for p in rows},
        project=db.session.get(Project, found.project_id),
        form=EmptyForm(),
        status_labels=STATUS_LABELS,
        batch_labels=BATCH_LABELS,
    )


@bp.get("/batches/<int:batch_id>/file.csv")
@permission_required("payout.read", "payout.manage")
def batch_csv(batch_id: int):
    return _batch_file(batch_id, "csv")


@bp.get("/batches/<int:batch_id>/file.xlsx")
@permission_required("payout.read", "payout.manage")
def batch_xlsx(batch_id: int):
    return _batch_file(batch_id, "xlsx")


def _batch_file(batch_id: int, fmt: str):
    found = _visible_batch(batch_id)
    rows = batches.payouts_of(found.id)
    body = bankfile.to_csv(found, rows) if fmt == "csv" else bankfile.to_xlsx(found, rows)
    batches.downloaded(found, fmt, current_user.id)
    return Response(
        body,
        mimetype=bankfile.CSV_TYPE if fmt == "csv" else bankfile.XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{found.reference}.{fmt}"'},
    )


@bp.post("/batches/<int:batch_id>/sent")
@permission_required("payout.read", "payout.manage")
def batch_sent(batch_id: int):
    found = _visible_batch(batch_id)
    if not EmptyForm().validate_on_submit():
        raise DomainError(_("The form expired. Reload the page and try again."))
    with attempt():
        moved = batches.mark_sent(found, current_user.id)
    flash(
        ngettext(
            "Batch marked sent: %(num)s payout is with the bank.",
            "Batch marked sent: %(num)s payouts are with the bank.",
            moved,
        ),
        "success",
    )
    return redirect(url_for("payouts.batch", batch_id=found.id))


# --------------------------------------------------------------------------- methods (staff)


@bp.route("/vendors/<int:vendor_id>/methods", methods=["GET", "POST"])
@permission_required("vendor.read")
def vendor_methods(vendor_id: int):
    vendor = vendors.get_visible(current_user, vendor_id)
    form = MethodForm()
    if request.method == "POST":
        if not current_user.can("vendor.manage"):
            raise Forbidden(_("Only staff who manage vendors can add payout methods."))
        if form.validate_on_submit():
            try:
                with attempt():
                    methods.add(vendor, form.data, user_id=current_user.id)
            except DomainError as exc:
                getattr(form, getattr(exc, "field", "account_number")).errors.append(str(exc))
            else:
                flash(_("Payout method added."), "success")
                return redirect(url_for("payouts.vendor_methods", vendor_id=vendor.id))
    return render_template(
        "payouts/methods.html",
        vendor=vendor,
        methods=methods.of_vendor(vendor.id),
        mask=methods.mask,
        kinds=KIND_LABELS,
        form=form,
        action_form=EmptyForm(),
    ), (400 if form.errors else 200)


@bp.post("/vendors/<int:vendor_id>/methods/<int:method_id>/default")
@permission_required("vendor.read", "vendor.manage")
def vendor_method_default(vendor_id: int, method_id: int):
    return _method_action(vendor_id, method_id, "default")


@bp.post("/vendors/<int:vendor_id>/methods/<int:method_id>/remove")
@permission_required("vendor.read", "vendor.manage")
def vendor_method_remove(vendor_id: int, method_id: int):
    return _method_action(vendor_id, method_id, "remove")


def _method_action(vendor_id: int, method_id: int, action: str):
    vendor = vendors.get_visible(current_user, vendor_id)
    method = methods.get(vendor.id, method_id)
    if not EmptyForm().validate_on_submit():
        raise DomainError(_("The form expired. Reload the page and try again."))
    with attempt():
        if action == "default":
            methods.make_default(method)
        else:
            methods.remove(method)
    flash(_("Payout methods updated."), "success")
    return redirect(url_for("payouts.vendor_methods", vendor_id=vendor.id))


# --------------------------------------------------------------------------- provider settings


@bp.route("/settings", methods=["GET", "POST"])
@permission_required("settings.manage")
def provider_settings():
    form = MomoSettingsForm(
        base_url=settings.get(momo.BASE_URL) or "",
        callback_base_url=settings.get(momo.CALLBACK_BASE_URL) or "",
        target_environment=settings.get(momo.TARGET_ENVIRONMENT) or "",
    )
    if form.validate_on_submit():
        try:
            with attempt():
                base = form.base_url.data.strip()
                if base:
                    try:
                        base = momo.check_base_url(base)
                    except ValueError as exc:
                        raise ValidationFailed({"base_url": str(exc)}) from None
                callback = form.callback_base_url.data.strip()
                if callback:
                    try:
                        callback = momo.check_base_url(callback)
                    except ValueError as exc:
                        raise ValidationFailed({"callback_base_url": str(exc)}) from None
                settings.set_value(momo.BASE_URL, base)
                settings.set_value(momo.CALLBACK_BASE_URL, callback)
                settings.set_value(momo.TARGET_ENVIRONMENT, form.target_environment.data.strip())
                for key, field in (
                    (momo.API_USER, form.api_user),
                    (momo.API_KEY, form.api_key),
                    (momo.SUBSCRIPTION_KEY, form.subscription_key),
                ):
                    if form.clear_keys.data:
                        settings.set_value(key, "")
                    elif field.data:
                        settings.set_value(key, field.data.strip())
        except ValidationFailed as exc:
            for name, message in exc.fields.items():
                form[name].errors.append(message)
        else:
            momo.forget_tokens()
            flash(_("Mobile-money settings saved."), "success")
            return redirect(url_for("payouts.provider_settings"))
    return render_template(
        "payouts/settings.html",
        form=form,
        keys_set={key: settings.is_set(key) for key in momo.SECRET},
        labels={
            momo.API_USER: _("API user"),
            momo.API_KEY: _("API key"),
            momo.SUBSCRIPTION_KEY: _("Subscription key"),
        },
    ), (400 if form.errors else 200)


# --------------------------------------------------------------------------- callback


@callback_bp.route(
    "/api/payouts/momo/callback/<string(maxlength=64):reference>", methods=["POST", "PUT"]
)
@public  # the provider cannot sign in: only a known reference is heard, and only the status
# query (made by the portal, to the configured host) changes anything
@csrf.exempt
@limiter.limit("600 per minute")
def momo_callback(reference: str):
    try:
        reference = str(uuid.UUID(reference))
    except ValueError:
        return problem(404, "No payout has this reference.")
    _, claimed = momo_provider().parse_callback(str(reference), request.get_data(cache=False))
    payout = sending.callback_heard(str(reference), claimed)
    if payout is None:
        return problem(404, "No payout has this reference.")
    return jsonify({"status": "accepted"}), 202


def momo_provider():
    from portal.payouts.providers import for_kind

    return for_kind("momo")

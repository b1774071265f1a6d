"""The Jobs page: filter, detail, retry, cancel, and the pipeline check."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import inputs
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.extensions import db
from portal.jobs import services, topics  # noqa: F401  (topics registers the socket topics)
from portal.jobs.forms import DiagnosticForm
from portal.jobs.kinds import KINDS, QUEUE_LABELS, QUEUES
from portal.jobs.models import STATUS_LABELS
from portal.projects import services as projects
from portal.redirects import safe_next

bp = Blueprint("jobs", __name__, url_prefix="/jobs")


def _filter() -> services.JobFilter:
    return services.JobFilter(
        queue=inputs.choice_arg("queue", QUEUES),
        status=inputs.choice_arg("status", services.FILTER_STATUSES),
        project_id=inputs.id_arg("project"),
        kind=inputs.choice_arg("kind", KINDS),
        since=inputs.date_arg("since"),
        until=inputs.date_arg("until"),
    )


@bp.get("/")
@permission_required("job.read")
def index():
    f = _filter()
    page = db.paginate(
        services.search(current_user, f),
        page=inputs.page_arg(),
        per_page=25,
        error_out=False,
    )
    return render_template(
        "jobs/index.html",
        page=page,
        f=f,
        queues=QUEUES,
        queue_labels=QUEUE_LABELS,
        statuses=services.FILTER_STATUSES,
        status_labels=STATUS_LABELS,
        kinds=KINDS,
        counts=services.status_counts(current_user),
        projects=db.session.scalars(projects.visible_projects(current_user)).all(),
        action_form=EmptyForm(),
        diagnostic_form=DiagnosticForm(),
    )


@bp.get("/<int:job_id>")
@permission_required("job.read")
def show(job_id: int):
    job = services.get_visible(current_user, job_id)
    return render_template(
        "jobs/show.html",
        job=job,
        kind=KINDS.get(job.kind),
        attempts=services.attempts_of(job),
        action_form=EmptyForm(),
        queue_labels=QUEUE_LABELS,
        status_labels=STATUS_LABELS,
        # The technical error names code and internals: for those who look after the portal.
        technical=current_user.can("chain.details.read") or current_user.can("settings.manage"),
    )


def _back(job_id: int):
    fallback = url_for("jobs.show", job_id=job_id)
    return redirect(safe_next(request.form.get("next"), fallback, under="/jobs"))


@bp.post("/<int:job_id>/retry")
@permission_required("job.retry")
def retry(job_id: int):
    job = services.get_visible(current_user, job_id)
    if EmptyForm().validate_on_submit():
        services.retry(job)
        flash(_("Job %(id)s is queued again.", id=job.id), "success")
    return _back(job.id)


@bp.post("/<int:job_id>/cancel")
@permission_required("job.cancel")
def cancel(job_id: int):
    job = services.get_visible(current_user, job_id)
    if EmptyForm().validate_on_submit():
        services.cancel(job)
        flash(_("Job %(id)s is cancelled.", id=job.id), "success")
    return _back(job.id)


@bp.post("/diagnostic")
@permission_required("job.retry")
def diagnostic():
    form = DiagnosticForm()
    if form.validate_on_submit():
        job = services.run_diagnostic(current_user, fail_times=form.fail_times.data or 0)
        flash(_("Pipeline check queued as job %(id)s.", id=job.id), "success")
        return redirect(url_for("jobs.show", job_id=job.id))
    flash(_("Give a number of failures from 0 to 10."), "error")
    return redirect(url_for("jobs.index"))

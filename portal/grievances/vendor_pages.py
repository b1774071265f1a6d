"""The vendor's "Report a problem" page on the phone (vendor session): the form, and the
vendor's own reports with their reference and status (never staff notes)."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal.errors import DomainError
from portal.extensions import db
from portal.grievances import services
from portal.grievances.forms import VendorReportForm
from portal.grievances.models import Grievance
from portal.projects.models import Project
from portal.quotas import services as quotas
from portal.transactions import attempt
from portal.vendor_portal.guards import vendor_required
from portal.vendor_portal.routes import bp
from portal.vendor_portal.sessions import current_vendor
from portal.vendors.models import VendorProject

REPORTS = quotas.define(
    "grievance.vendor",
    "VENDOR_REPORT_LIMITS",
    _l("You have sent many reports today. Please call the programme team, or try again {when}."),
)
SHOWN = 20


def _projects(vendor) -> list[Project]:
    return list(
        db.session.scalars(
            select(Project)
            .join(VendorProject, VendorProject.project_id == Project.id)
            .where(VendorProject.vendor_id == vendor.id)
            .order_by(Project.name)
        )
    )


# The vendor reads their reports in their own language: the statuses and types in the words
# of the phone pages (the staff pages keep the models' labels).
VENDOR_STATUS_LABELS = {
    "new": _l("Received"),
    "assigned": _l("Being looked at"),
    "in_progress": _l("Being looked at"),
    "resolved": _l("Resolved"),
    "closed": _l("Closed"),
}
VENDOR_TYPES = {
    "payment": _l("A payment or a code"),
    "registration": _l("A beneficiary's details"),
    "vendor": _l("My shop or my account"),
    "other": _l("Something else"),
}


@bp.route("/problems", methods=["GET", "POST"])
@vendor_required
def report_problem():
    vendor = current_vendor()
    mine = _projects(vendor)
    form = VendorReportForm()
    form.type.choices = {key: str(label) for key, label in VENDOR_TYPES.items()}
    form.project_id.choices = [(p.id, p.name) for p in mine]
    if mine and form.validate_on_submit():
        try:
            with attempt():
                # Counted per vendor, whichever phone or session they report from.
                quotas.take(REPORTS, f"vendor:{vendor.id}")
                grievance = services.open_grievance(
                    "vendor",
                    form.description.data,
                    type_=form.type.data,
                    vendor_id=vendor.id,
                    project_id=form.project_id.data,
                )
        except DomainError as exc:
            form.description.errors = [*form.description.errors, str(exc)]
        else:
            flash(
                _(
                    "Thank you. Your report is %(ref)s; the programme team will contact you.",
                    ref=grievance.ref,
                ),
                "success",
            )
            return redirect(url_for("vendor.report_problem"))
    reports = db.session.scalars(
        select(Grievance)
        .where(Grievance.vendor_id == vendor.id)
        .order_by(Grievance.id.desc())
        .limit(SHOWN)
    ).all()
    from portal.accounts.forms import EmptyForm

    return render_template(
        "vendor/problems.html",
        vendor=vendor,
        form=form,
        has_projects=bool(mine),
        reports=reports,
        statuses=VENDOR_STATUS_LABELS,
        types=VENDOR_TYPES,
        sign_out_form=EmptyForm(),
    ), (400 if form.errors else 200)

"""The money trail for staff and auditors: a project's redemptions (list and exports) and a
vendor's statement for a period (PDF).

``redemption.read`` guards both: who may follow the money is a different question from who may
see people (``beneficiary.read``) or run the chain (``chain.read``); finance and auditors need it
without editing anything. Names and phone numbers additionally need ``beneficiary.pii.read``,
and showing or exporting them is audited.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import inputs, offload
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.beneficiaries import reads
from portal.beneficiaries.models import Beneficiary
from portal.chain.models import ProjectChain
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.ledger import (
    display,
    labels,
    redemption_export,
    redemption_list,
    statement_pdf,
    statements,
)
from portal.projects import services as projects
from portal.projects.models import Project
from portal.redemptions.models import STATUSES
from portal.timeutil import utcnow
from portal.vendors import services as vendors
from portal.vendors.models import Vendor, VendorProject

bp = Blueprint("ledger", __name__)
# The money pages' status words (approvals, chain, disbursements, reconciliation use it too).
bp.add_app_template_global(labels.label, "money_label")
bp.add_app_template_filter(labels.hours_minutes, "hm")
bp.add_app_template_filter(labels.resolution, "resolution")
PII = "beneficiary.pii.read"


def _filters(project_id: int, values) -> redemption_list.Filters:
    return redemption_list.Filters(
        project_id=project_id,
        vendor_id=inputs.id_arg("vendor", values),
        beneficiary=inputs.text_arg("beneficiary", 12, values=values),
        start=inputs.date_arg("from", values),
        end=inputs.date_arg("to", values),
        status=inputs.choice_arg("status", STATUSES, values=values),
    )


def _project_vendors(project_id: int) -> list[Vendor]:
    return db.session.scalars(
        select(Vendor)
        .join(VendorProject, VendorProject.vendor_id == Vendor.id)
        .where(VendorProject.project_id == project_id)
        .order_by(Vendor.name, Vendor.id)
    ).all()


@bp.get("/redemptions")
@permission_required("redemption.read")
def redemptions_home():
    """The nav's entry: the first project the user sees (each list has a project picker)."""
    first = db.session.scalars(projects.visible_projects(current_user).limit(1)).first()
    if first is None:
        return render_template("ledger/redemptions.html", project=None, projects=[])
    return redirect(url_for(".redemptions", project_id=first.id))


@bp.get("/projects/<int:project_id>/redemptions")
@permission_required("redemption.read")
def redemptions(project_id: int):
    project = projects.get_visible(current_user, project_id)
    filters = _filters(project.id, request.args)
    page = redemption_list.page(
        filters, after=inputs.text_arg("after", 80), before=inputs.text_arg("before", 80)
    )
    show_pii = current_user.can(PII)
    ids = {r.beneficiary_id for r, _ in page.rows if r.beneficiary_id}
    people = {}
    if show_pii and ids:
        people = {
            p.id: p
            for p in db.session.scalars(
                select(Beneficiary)
                .where(Beneficiary.id.in_(ids))
                .options(selectinload(Beneficiary.pii))
            )
        }
    vendor_names = dict(
        db.session.execute(
            select(Vendor.id, Vendor.name).where(Vendor.id.in_({r.vendor_id for r, _ in page.rows}))
        ).all()
    )
    kept = filters.as_args()

    def link(arguments: dict | None) -> str | None:
        if arguments is None:
            return None
        return url_for(".redemptions", project_id=project.id, **kept, **arguments)

    pc = db.session.get(ProjectChain, project.id)
    body = render_template(
        "ledger/redemptions.html",
        project=project,
        projects=db.session.scalars(projects.visible_projects(current_user)).all(),
        page=page,
        previous_url=link(page.previous),
        next_url=link(page.next),
        first_url=link({}) if page.cursor else None,
        filters=filters,
        export_args=kept,
        statuses=STATUSES,
        vendors=_project_vendors(project.id),
        vendor_names=vendor_names,
        people=people,
        show_pii=show_pii,
        money=lambda amount: display.money(amount, pc),
    )
    if people:
        reads.record(list(people.values()), "redemptions", project_id=project.id)
    return body


@bp.post("/projects/<int:project_id>/redemptions/export.<fmt>")
@permission_required("redemption.read")
def export(project_id: int, fmt: str):
    if fmt not in redemption_export.FORMATS:
        abort(404)
    project = projects.get_visible(current_user, project_id)
    if not EmptyForm().validate_on_submit():
        return redirect(url_for(".redemptions", project_id=project.id))
    filters = _filters(project.id, request.form)
    job = redemption_export.prepare(current_user, filters)
    redemption_export.record(job, fmt, redemption_list.count(filters, limit=10**9))
    return Response(
        # The rows read db.session while the response streams, inside the request's context.
        stream_with_context(redemption_export.chunks(job, fmt)),
        mimetype=redemption_export.FORMATS[fmt],
        headers={
            "Content-Disposition": (
                f'attachment; filename="{redemption_export.filename(project.id, fmt)}"'
            ),
            "Cache-Control": "no-store",
        },
    )


def _statement_projects(vendor: Vendor) -> list[Project]:
    """The vendor's projects that the user sees."""
    assigned = select(VendorProject.project_id).where(VendorProject.vendor_id == vendor.id)
    query = projects.scope(select(Project), Project.id, current_user).where(
        Project.id.in_(assigned)
    )
    return db.session.scalars(query.order_by(Project.name, Project.id)).all()


@bp.get("/vendors/<int:vendor_id>/statement")
@permission_required("vendor.read", "redemption.read")
def statement(vendor_id: int):
    """Choose a project and a period; with them, the PDF (a read: the form is a GET)."""
    vendor = vendors.get_visible(current_user, vendor_id)
    choices = _statement_projects(vendor)
    today = utcnow().date()
    project_id = inputs.id_arg("project")
    start = inputs.date_arg("from")
    end = inputs.date_arg("to")
    errors: dict[str, str] = {}
    if "project" in request.args:
        project = next((p for p in choices if p.id == project_id), None)
        if project is None:
            errors["project"] = _("Choose one of this vendor's projects.")
        try:
            start, end = statements.check_period(start, end)
        except ValidationFailed as exc:
            errors.update(exc.fields)
        if not errors:
            found = statements.build(vendor, project, start, end)
            statements.record(vendor, project, found)
            pdf = offload.run(statement_pdf.render, found)
            return Response(
                pdf,
                mimetype="application/pdf",
                headers={
                    "Content-Disposition": (
                        f'attachment; filename="{statements.filename(vendor, found)}"'
                    ),
                    "Cache-Control": "no-store",
                },
            )
    return render_template(
        "ledger/statement.html",
        vendor=vendor,
        choices=choices,
        project_id=project_id or (choices[0].id if len(choices) == 1 else None),
        start=start or today.replace(day=1),
        end=end or today,
        errors=errors,
    ), (422 if errors else 200)

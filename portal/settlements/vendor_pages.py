"""The vendor's "Cash out" pages on the phone (vendor session): what is available per project,
the request form, and the vendor's settlements, live."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from portal.chain import setup
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.payouts import methods
from portal.payouts.models import KINDS
from portal.projects.models import Project
from portal.settlements import live, services
from portal.settlements.forms import CashOutForm
from portal.settlements.models import LABELS, TONES
from portal.transactions import attempt
from portal.vendor_portal.guards import vendor_required
from portal.vendor_portal.routes import bp
from portal.vendor_portal.sessions import current_vendor
from portal.vendors.models import VendorProject


def _projects(vendor) -> list[Project]:
    return list(
        db.session.scalars(
            select(Project)
            .join(VendorProject, VendorProject.project_id == Project.id)
            .where(VendorProject.vendor_id == vendor.id)
            .order_by(Project.name)
        )
    )


def _rows(vendor) -> list[dict]:
    return [
        {
            "s": s,
            "amount": services.money(s.project_id, s.amount),
            "state": live.serialize(s),
        }
        for s in services.of_vendor(vendor.id)
    ]


@bp.get("/cash-out")
@vendor_required
def cash_out_home():
    vendor = current_vendor()
    choices = []
    for project in _projects(vendor):
        left = services.available(project.id, vendor.id)
        choices.append({"project": project, "available": services.money(project.id, left)})
    return render_template(
        "vendor/cash_out_home.html",
        vendor=vendor,
        choices=choices,
        settlements=_rows(vendor),
        labels=LABELS,
        tones=TONES,
        sign_out_form=_empty(),
    )


def _empty():
    from portal.accounts.forms import EmptyForm

    return EmptyForm()


@bp.route("/cash-out/<int:project_id>", methods=["GET", "POST"])
@vendor_required
def cash_out(project_id: int):
    vendor = current_vendor()
    project = next((p for p in _projects(vendor) if p.id == project_id), None)
    if project is None:
        raise NotFound(_("You do not serve this project."))
    pc = setup.state(project.id)
    form = CashOutForm()
    form.amount.use(pc.decimals if pc else None)
    mine = methods.of_vendor(vendor.id)
    form.method_id.choices = [
        (m.id, f"{KINDS[m.kind]} {methods.mask(m.account_number)}") for m in mine
    ]
    if not form.is_submitted():
        default = next((m for m in mine if m.is_default), None)
        form.method_id.data = default.id if default else None
    left = services.available(project.id, vendor.id)
    if mine and form.validate_on_submit():
        try:
            with attempt():
                row = services.request(
                    project,
                    vendor.id,
                    form.amount.data,
                    method_id=form.method_id.data,
                    by_vendor=True,
                )
        except DomainError as exc:
            form.amount.errors = [*form.amount.errors, str(exc)]
        else:
            flash(
                _(
                    "Asked to cash out %(amount)s. You will see here when it is paid.",
                    amount=services.money(project.id, row.amount),
                ),
                "success",
            )
            return redirect(url_for("vendor.cash_out_home"))
    return render_template(
        "vendor/cash_out.html",
        vendor=vendor,
        project=project,
        form=form,
        has_methods=bool(mine),
        available=services.money(project.id, left),
        paused=pc is not None and pc.paused_at is not None,
        sign_out_form=_empty(),
    ), (400 if form.errors else 200)

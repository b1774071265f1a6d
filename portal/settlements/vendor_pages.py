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
from portal.payouts.models import KIND_LABELS
from portal.projects.models import Project
from portal.settlements import live, repayment, services
from portal.settlements.forms import CashOutForm, RetryForm
from portal.settlements.models import FAILED, LABELS, TONES, Settlement
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


def _method_choices(vendor) -> list[tuple[int, str]]:
    return [
        (m.id, f"{KIND_LABELS[m.kind]} {methods.mask(m.account_number)}")
        for m in methods.of_vendor(vendor.id)
    ]


def _rows(vendor) -> list[dict]:
    choices = _method_choices(vendor)
    rows = []
    for s in services.of_vendor(vendor.id):
        form = None
        # Every cash-out not failed before its burn may still have its payment fail (even
        # after it was paid: a statement can show the money returned), so its row carries the
        # hidden "Pay me again" form that the live status shows when that happens.
        if s.status != FAILED and choices:
            form = RetryForm(prefix=f"again{s.id}")
            form.method_id.choices = choices
            form.method_id.data = s.method_id
        rows.append(
            {
                "s": s,
                "amount": services.money(s.project_id, s.amount),
                "state": live.serialize(s),
                "repay_form": form,
            }
        )
    return rows


@bp.get("/cash-out")
@vendor_required
def cash_out_home():
    vendor = current_vendor()
    choices = []
    for project in _projects(vendor):
        left = services.available(project.id, vendor.id)
        again = repayment.owed_again(project.id, vendor.id)
        choices.append(
            {
                "project": project,
                "available": services.money(project.id, left),
                "again": services.money(project.id, again) if again else "",
            }
        )
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
        (m.id, f"{KIND_LABELS[m.kind]} {methods.mask(m.account_number)}") for m in mine
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


@bp.post("/cash-out/<int:settlement_id>/again")
@vendor_required
def pay_again(settlement_id: int):
    """ "Pay me again": a cash-out whose payment failed, to the same account (at once) or to
    another of the vendor's accounts (after approval)."""
    vendor = current_vendor()
    row = db.session.get(Settlement, settlement_id)
    if row is None or row.vendor_id != vendor.id:
        raise NotFound(_("No such cash-out."))
    form = RetryForm(prefix=f"again{row.id}")
    form.method_id.choices = _method_choices(vendor)
    if not form.validate_on_submit():
        flash(_("Choose where we pay you, then try again."), "error")
        return redirect(url_for("vendor.cash_out_home"))
    try:
        with attempt():
            done = repayment.repay(row, form.method_id.data, by_vendor=True)
    except DomainError as exc:
        flash(str(exc), "error")
    else:
        amount = services.money(row.project_id, row.amount)
        flash(
            _(
                "We are paying you %(amount)s again. You will see here when it is paid.",
                amount=amount,
            )
            if done == repayment.SENT
            else _(
                "%(amount)s will be paid to the account you chose once the programme approves it.",
                amount=amount,
            ),
            "success",
        )
    return redirect(url_for("vendor.cash_out_home"))

"""The vendor's payout methods on the phone (vendor session). A change made here is audited as
the vendor's and confirmed to the vendor's phone by SMS, so a stolen session that changes where
money goes does not go unnoticed."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import gettext as _

from portal.accounts.forms import EmptyForm
from portal.comms import services as comms
from portal.errors import DomainError
from portal.payouts import methods
from portal.payouts.forms import MethodForm
from portal.payouts.models import KIND_LABELS, KINDS
from portal.transactions import attempt
from portal.vendor_portal.guards import vendor_required
from portal.vendor_portal.routes import bp
from portal.vendor_portal.sessions import current_vendor


def _tell(vendor, what: str) -> None:
    comms.send_sms(
        vendor.phone,
        f"Your payout details were changed: {what}. If this was not you, call the programme "
        "team now.",
        "payout-method",
    )


@bp.route("/payout-methods", methods=["GET", "POST"])
@vendor_required
def payout_methods():
    vendor = current_vendor()
    form = MethodForm()
    if form.validate_on_submit():
        try:
            with attempt():
                method = methods.add(vendor, form.data, by_vendor=True)
                _tell(
                    vendor,
                    f"{KINDS[method.kind].lower()} {methods.mask(method.account_number)} added",
                )
        except DomainError as exc:
            getattr(form, getattr(exc, "field", "account_number")).errors.append(str(exc))
        else:
            flash(_("Payout method added."), "success")
            return redirect(url_for("vendor.payout_methods"))
    return render_template(
        "vendor/payout_methods.html",
        vendor=vendor,
        methods=methods.of_vendor(vendor.id),
        mask=methods.mask,
        kinds=KIND_LABELS,
        form=form,
        action_form=EmptyForm(),
        sign_out_form=EmptyForm(),
    ), (400 if form.errors else 200)


@bp.post("/payout-methods/<int:method_id>/default")
@vendor_required
def payout_method_default(method_id: int):
    return _act(method_id, "default")


@bp.post("/payout-methods/<int:method_id>/remove")
@vendor_required
def payout_method_remove(method_id: int):
    return _act(method_id, "remove")


def _act(method_id: int, action: str):
    vendor = current_vendor()
    method = methods.get(vendor.id, method_id)
    if not EmptyForm().validate_on_submit():
        raise DomainError(_("The page was open too long. Go back and reload it."))
    with attempt():
        if action == "default":
            methods.make_default(method, by_vendor=True)
            _tell(vendor, f"payouts now go to {methods.mask(method.account_number)}")
        else:
            methods.remove(method, by_vendor=True)
            _tell(vendor, f"{methods.mask(method.account_number)} removed")
    flash(_("Payout methods updated."), "success")
    return redirect(url_for("vendor.payout_methods"))

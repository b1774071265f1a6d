"""The vendor's payout methods on the phone (vendor session). A change made here is audited as
the vendor's and confirmed to the vendor's phone by SMS, so a stolen session that changes where
money goes does not go unnoticed."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import force_locale
from flask_babel import gettext as _

from portal.accounts.forms import EmptyForm
from portal.comms import services as comms
from portal.errors import DomainError
from portal.i18n.locales import DEFAULT as DEFAULT_LOCALE
from portal.payouts import methods
from portal.payouts.forms import MethodForm
from portal.payouts.models import KIND_LABELS
from portal.transactions import attempt
from portal.vendor_portal.guards import vendor_required
from portal.vendor_portal.routes import bp
from portal.vendor_portal.sessions import current_vendor

# What changed, by action: the SMS is written in the vendor's language (the one their phone
# pages are in), whatever language the page that made the change was in.
ADDED, DEFAULT, REMOVED = "added", "default", "removed"


def _what(action: str, kind: str, masked: str) -> str:
    if action == ADDED:
        return _("%(kind)s %(account)s added", kind=str(KIND_LABELS[kind]), account=masked)
    if action == DEFAULT:
        return _("payouts now go to %(account)s", account=masked)
    return _("%(account)s removed", account=masked)


def _tell(vendor, action: str, kind: str, masked: str) -> None:
    with force_locale(vendor.locale or DEFAULT_LOCALE):
        body = _(
            "Your payout details were changed: %(what)s. If this was not you, call the "
            "programme team now.",
            what=_what(action, kind, masked),
        )
    comms.send_sms(vendor.phone, body, "payout-method")


@bp.route("/payout-methods", methods=["GET", "POST"])
@vendor_required
def payout_methods():
    vendor = current_vendor()
    form = MethodForm()
    if form.validate_on_submit():
        try:
            with attempt():
                method = methods.add(vendor, form.data, by_vendor=True)
                _tell(vendor, ADDED, method.kind, methods.mask(method.account_number))
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
            _tell(vendor, DEFAULT, method.kind, methods.mask(method.account_number))
        else:
            methods.remove(method, by_vendor=True)
            _tell(vendor, REMOVED, method.kind, methods.mask(method.account_number))
    flash(_("Payout methods updated."), "success")
    return redirect(url_for("vendor.payout_methods"))

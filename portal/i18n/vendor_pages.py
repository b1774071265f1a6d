"""The vendor's language on the phone pages, kept on the vendor's record."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_babel import force_locale
from flask_babel import gettext as _

from portal.extensions import db
from portal.i18n.forms import LanguageForm
from portal.vendor_portal.guards import vendor_required
from portal.vendor_portal.routes import bp
from portal.vendor_portal.sessions import current_vendor


@bp.route("/language", methods=["GET", "POST"])
@vendor_required
def language():
    vendor = current_vendor()
    form = LanguageForm(locale=vendor.locale or None)
    if form.validate_on_submit():
        vendor.locale = form.locale.data
        db.session.flush()
        with force_locale(vendor.locale):
            flash(_("Language saved."), "success")
        return redirect(url_for("vendor.home"))
    return render_template("vendor/language.html", form=form), (400 if form.errors else 200)

"""A staff user's language, kept on the account and used on every page they open."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user

from portal.accounts.guards import signed_in
from portal.extensions import db
from portal.i18n.forms import LanguageForm

bp = Blueprint("i18n", __name__)


@bp.post("/account/language")
@signed_in
def staff_language():
    form = LanguageForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        user.locale = form.locale.data
        db.session.flush()
        # This request's language was chosen before the change; the next page is in the new one.
        with force_locale(user.locale):
            flash(_("Language saved."), "success")
    else:
        flash(_("Choose one of the languages in the list."), "error")
    return redirect(url_for("accounts.account"))

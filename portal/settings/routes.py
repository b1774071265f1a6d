"""Runtime settings page (admins)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from portal.accounts.guards import permission_required
from portal.errors import DomainError
from portal.extensions import db
from portal.forms import Form
from portal.settings import services

bp = Blueprint("settings", __name__, url_prefix="/settings")


class SettingsForm(Form):
    default_country = StringField(
        "Default country for phone numbers",
        validators=[DataRequired(), Length(min=2, max=2)],
        description="Two letters, e.g. NP, KE, BD. Local numbers are read as this country's.",
    )


@bp.route("/", methods=["GET", "POST"])
@permission_required("settings.manage")
def index():
    form = SettingsForm(default_country=services.default_country())
    if form.validate_on_submit():
        try:
            services.set_value(services.DEFAULT_COUNTRY, form.default_country.data)
        except DomainError as exc:
            db.session.rollback()
            form.default_country.errors.append(str(exc))
        else:
            db.session.commit()
            flash("Settings saved.", "success")
            return redirect(url_for("settings.index"))
    return render_template("settings/index.html", form=form)

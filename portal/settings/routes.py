"""Runtime settings page (admins)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from portal.accounts.guards import permission_required
from portal.errors import DomainError, ValidationFailed
from portal.forms import Form
from portal.settings import services
from portal.transactions import attempt

bp = Blueprint("settings", __name__, url_prefix="/settings")


class SettingsForm(Form):
    default_country = StringField(
        _l("Default country for phone numbers"),
        validators=[DataRequired(), Length(min=2, max=2)],
        description=_l("Two letters, e.g. NP, KE, BD. Local numbers are read as this country's."),
    )
    kobo_allowed_hosts = TextAreaField(
        _l("KoboToolbox servers"),
        validators=[Length(max=2000)],
        description=_l(
            "The servers a KoboToolbox source may name, comma separated: a host "
            "(https on port 443), host:port or host:*. The API token is only ever sent to these."
        ),
    )


@bp.route("/", methods=["GET", "POST"])
@permission_required("settings.manage")
def index():
    form = SettingsForm(
        default_country=services.default_country(),
        kobo_allowed_hosts=services.get(services.KOBO_ALLOWED_HOSTS),
    )
    if form.validate_on_submit():
        refused: dict[str, str] = {}
        try:
            with attempt():  # all the posted settings, or none
                for key in (services.DEFAULT_COUNTRY, services.KOBO_ALLOWED_HOSTS):
                    if not form[key].raw_data:
                        continue  # not posted: left as it is
                    try:
                        services.set_value(key, form[key].data)
                    except DomainError as exc:
                        refused[key] = str(exc)
                if refused:
                    raise ValidationFailed(refused)
        except ValidationFailed:
            for key, message in refused.items():
                form[key].errors.append(message)
        else:
            flash(_("Settings saved."), "success")
            return redirect(url_for("settings.index"))
    return render_template("settings/index.html", form=form)

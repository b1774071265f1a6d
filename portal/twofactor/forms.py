from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from portal.forms import Form


class CodeForm(Form):
    """The sign-in step: a code from the app, or a recovery code."""

    code = StringField(
        _l("Code"),
        validators=[DataRequired(), Length(max=64)],
        description=_l(
            "The six digits your authenticator app shows, or one of your recovery codes."
        ),
        render_kw={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"},
    )
    remember = BooleanField(_l("Do not ask again on this browser for 30 days"))


class ConfirmForm(Form):
    """Set-up, and renewing the recovery codes: a code from the app."""

    code = StringField(
        _l("Code from the app"),
        validators=[DataRequired(), Length(max=16)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )

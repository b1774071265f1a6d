from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, TelField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.money.forms import AmountField


class PhoneForm(Form):
    phone = TelField(
        _l("Your phone number"),
        validators=[DataRequired(_l("Enter your phone number.")), Length(max=32)],
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )


class CodeForm(Form):
    code = StringField(
        _l("Code"),
        validators=[DataRequired(_l("Enter the code.")), Length(max=12)],
        render_kw={
            "autocomplete": "one-time-code",
            "inputmode": "numeric",
            "pattern": "[0-9 ]*",
            "maxlength": "7",
        },
    )


class ChargeForm(Form):
    project_id = SelectField(_l("Project"), coerce=int, validate_choice=False)
    card = StringField(
        _l("Card code"),
        validators=[Optional(), Length(max=80)],
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"},
    )
    phone = TelField(
        _l("Or the beneficiary's phone number"),
        validators=[Optional(), Length(max=32)],
        render_kw={"autocomplete": "off", "inputmode": "tel"},
    )
    amount = AmountField(_l("Amount"))

from __future__ import annotations

from wtforms import SelectField, StringField, TelField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.money.forms import AmountField


class PhoneForm(Form):
    phone = TelField(
        "Your phone number",
        validators=[DataRequired("Enter your phone number."), Length(max=32)],
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )


class CodeForm(Form):
    code = StringField(
        "Code",
        validators=[DataRequired("Enter the code."), Length(max=12)],
        render_kw={
            "autocomplete": "one-time-code",
            "inputmode": "numeric",
            "pattern": "[0-9 ]*",
            "maxlength": "7",
        },
    )


class ChargeForm(Form):
    project_id = SelectField("Project", coerce=int, validate_choice=False)
    card = StringField(
        "Card code",
        validators=[Optional(), Length(max=80)],
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"},
    )
    phone = TelField(
        "Or the beneficiary's phone number",
        validators=[Optional(), Length(max=32)],
        render_kw={"autocomplete": "off", "inputmode": "tel"},
    )
    amount = AmountField("Amount")

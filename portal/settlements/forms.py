"""Forms of the settlement pages (the vendor's phone and staff)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DateField, RadioField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.money.forms import AmountField


class CashOutForm(Form):
    amount = AmountField(_l("Amount to cash out"), validators=[DataRequired(_l("Type an amount."))])
    method_id = RadioField(_l("Pay me to"), coerce=int, render_kw={"class": "choice-list"})


class RunForm(Form):
    period_from = DateField(_l("First day"), validators=[DataRequired(_l("Choose the first day."))])
    period_to = DateField(
        _l("Last day"),
        validators=[DataRequired(_l("Choose the last day."))],
        description=_l("Redemptions settled on chain up to the end of this day are paid out."),
    )


class RetryForm(Form):
    method_id = SelectField(_l("Pay to"), coerce=int, validators=[Optional()])


class CloseForm(Form):
    reason = TextAreaField(
        _l("Why close it"),
        validators=[DataRequired(_l("Say why: paid by hand, or what is owed.")), Length(max=200)],
    )

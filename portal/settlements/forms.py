"""Forms of the settlement pages (the vendor's phone and staff)."""

from __future__ import annotations

from wtforms import DateField, RadioField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.money.forms import AmountField


class CashOutForm(Form):
    amount = AmountField("Amount to cash out", validators=[DataRequired("Type an amount.")])
    method_id = RadioField("Pay me to", coerce=int, render_kw={"class": "choice-list"})


class RunForm(Form):
    period_from = DateField("First day", validators=[DataRequired("Choose the first day.")])
    period_to = DateField(
        "Last day",
        validators=[DataRequired("Choose the last day.")],
        description="Redemptions settled on chain up to the end of this day are paid out.",
    )


class RetryForm(Form):
    method_id = SelectField("Pay to", coerce=int, validators=[Optional()])


class CloseForm(Form):
    reason = TextAreaField(
        "Why close it",
        validators=[DataRequired("Say why: paid by hand, or what is owed."), Length(max=200)],
    )

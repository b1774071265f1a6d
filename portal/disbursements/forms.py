from __future__ import annotations

from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from portal.forms import Form
from portal.money.forms import AmountField


class DisbursementForm(Form):
    title = StringField(
        "Title",
        validators=[DataRequired(), Length(max=120)],
        description="E.g. “November food basket”.",
    )
    amount = AmountField("Amount per person")
    group_id = SelectField("Group", coerce=int, validators=[Optional()])
    refs = TextAreaField(
        "Or a selection of people",
        validators=[Optional(), Length(max=200_000)],
        description="Beneficiary reference codes, one per line or separated by commas. "
        "Used when no group is chosen.",
        render_kw={"rows": 4, "spellcheck": "false"},
    )
    batch_size = IntegerField(
        "People per batch",
        validators=[NumberRange(min=1, max=1000, message="Between 1 and 1000.")],
        description="Larger batches cost less per person to send; smaller ones fail smaller.",
    )

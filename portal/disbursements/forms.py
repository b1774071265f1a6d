from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from portal.forms import Form
from portal.money.forms import AmountField


class DisbursementForm(Form):
    title = StringField(
        _l("Title"),
        validators=[DataRequired(), Length(max=120)],
        description=_l("E.g. “November food basket”."),
    )
    amount = AmountField(_l("Amount per person"))
    group_id = SelectField(_l("Group"), coerce=int, validators=[Optional()])
    refs = TextAreaField(
        _l("Or a selection of people"),
        validators=[Optional(), Length(max=200_000)],
        description=_l(
            "Beneficiary reference codes, one per line or separated by commas. "
            "Used when no group is chosen."
        ),
        render_kw={"rows": 4, "spellcheck": "false"},
    )
    batch_size = IntegerField(
        _l("People per batch"),
        validators=[NumberRange(min=1, max=1000, message=_l("Between 1 and 1000."))],
        description=_l("Larger batches cost less per person to send; smaller ones fail smaller."),
    )

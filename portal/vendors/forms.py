from __future__ import annotations

from wtforms import SelectField, StringField, TelField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.vendors.models import CATEGORIES


class VendorForm(Form):
    name = StringField("Business name", validators=[DataRequired(), Length(max=120)])
    category = SelectField("Category", choices=dict(CATEGORIES))
    contact_name = StringField("Owner or contact", validators=[DataRequired(), Length(max=120)])
    phone = TelField(
        "Phone number",
        validators=[DataRequired(), Length(max=32)],
        description="The vendor signs in on the phone with this number.",
    )
    location = StringField("Location", validators=[Optional(), Length(max=120)])
    project_id = SelectField("Project", coerce=int, validators=[Optional()])


class VendorStatusForm(Form):
    status = SelectField("Decision", choices=[])
    reason = StringField("Reason (shown in the audit log)", validators=[Length(max=255)])

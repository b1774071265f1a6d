from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, TelField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.vendors.models import CATEGORIES


class VendorForm(Form):
    name = StringField(_l("Business name"), validators=[DataRequired(), Length(max=120)])
    category = SelectField(_l("Category"), choices=dict(CATEGORIES))
    contact_name = StringField(_l("Owner or contact"), validators=[DataRequired(), Length(max=120)])
    phone = TelField(
        _l("Phone number"),
        validators=[DataRequired(), Length(max=32)],
        description=_l("The vendor signs in on the phone with this number."),
    )
    location = StringField(_l("Location"), validators=[Optional(), Length(max=120)])
    project_id = SelectField(_l("Project"), coerce=int, validators=[Optional()])


class VendorStatusForm(Form):
    status = SelectField(_l("Decision"), choices=[])
    reason = StringField(_l("Reason (shown in the audit log)"), validators=[Length(max=255)])

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from portal.accounts.forms import CheckboxesField
from portal.beneficiaries.forms import labelled
from portal.dateranges import PROJECT, InRange
from portal.forms import Form
from portal.projects.models import TYPES


class ProjectForm(Form):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=120)])
    type = SelectField(_l("Type"), choices=[])
    description = TextAreaField(_l("Description"), validators=[Length(max=4000)])
    location = StringField(_l("Area"), validators=[Length(max=120)])
    currency = StringField(
        _l("Currency"), default="NPR", validators=[DataRequired(), Length(max=8)]
    )
    start_date = DateField(_l("Starts"), validators=[Optional(), InRange(PROJECT)])
    end_date = DateField(_l("Ends"), validators=[Optional(), InRange(PROJECT)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.type.choices = labelled(TYPES)  # in the page's language, so per request

    def validate_end_date(self, field):
        if field.data and self.start_date.data and field.data < self.start_date.data:
            raise ValidationError(_("The end comes before the start."))


class StatusForm(Form):
    status = SelectField(_l("New status"), choices=[])


class MembersForm(Form):
    members = CheckboxesField(_l("Members"), coerce=int)

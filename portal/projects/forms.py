from __future__ import annotations

from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from portal.accounts.forms import CheckboxesField
from portal.dateranges import PROJECT, InRange
from portal.forms import Form
from portal.projects.models import TYPES


class ProjectForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    type = SelectField("Type", choices=dict(TYPES))
    description = TextAreaField("Description", validators=[Length(max=4000)])
    location = StringField("Area", validators=[Length(max=120)])
    currency = StringField("Currency", default="NPR", validators=[DataRequired(), Length(max=8)])
    start_date = DateField("Starts", validators=[Optional(), InRange(PROJECT)])
    end_date = DateField("Ends", validators=[Optional(), InRange(PROJECT)])

    def validate_end_date(self, field):
        if field.data and self.start_date.data and field.data < self.start_date.data:
            raise ValidationError("The end comes before the start.")


class StatusForm(Form):
    status = SelectField("New status", choices=[])


class MembersForm(Form):
    members = CheckboxesField("Members", coerce=int)

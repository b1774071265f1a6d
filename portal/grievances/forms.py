"""Forms of the grievance pages: staff (open, edit, status, note) and the vendor's phone."""

from __future__ import annotations

from wtforms import DateField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.grievances.models import PRIORITIES, STATUS_LABELS, TYPES
from portal.grievances.services import MAX_TEXT


def _none_or_int(value):
    return int(value) if value not in (None, "", "None") else None


class GrievanceForm(Form):
    """Staff recording a grievance from the beneficiary's page (a call, a visit)."""

    type = SelectField("Type", choices=dict(TYPES), default="other")
    priority = SelectField("Priority", choices=dict(PRIORITIES), default="normal")
    description = TextAreaField(
        "What the person reports",
        validators=[DataRequired("Say what the problem is."), Length(max=MAX_TEXT)],
    )
    due_on = DateField("Answer by", validators=[Optional()])


class EditForm(Form):
    type = SelectField("Type", choices=dict(TYPES))
    priority = SelectField("Priority", choices=dict(PRIORITIES))
    assignee_id = SelectField(
        "Assigned to", coerce=_none_or_int, choices=[], validators=[Optional()]
    )
    due_on = DateField("Answer by", validators=[Optional()])


class StatusForm(Form):
    status = SelectField("Move to", choices=dict(STATUS_LABELS))


class NoteForm(Form):
    body = TextAreaField(
        "Note", validators=[DataRequired("Write the note first."), Length(max=MAX_TEXT)]
    )


class VendorReportForm(Form):
    """A vendor reporting a problem from their phone."""

    type = SelectField(
        "What is it about",
        choices={
            "payment": "A payment or a code",
            "registration": "A beneficiary's details",
            "vendor": "My shop or my account",
            "other": "Something else",
        },
        default="payment",
    )
    project_id = SelectField("Project", coerce=int, choices=[])
    description = TextAreaField(
        "What happened",
        validators=[DataRequired("Say what happened."), Length(max=MAX_TEXT)],
        description="No codes or PINs, please.",
    )

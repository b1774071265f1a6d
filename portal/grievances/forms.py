"""Forms of the grievance pages: staff (open, edit, status, note) and the vendor's phone."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DateField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.grievances.models import PRIORITIES, STATUS_LABELS, TYPES
from portal.grievances.services import MAX_TEXT


def _none_or_int(value):
    return int(value) if value not in (None, "", "None") else None


class GrievanceForm(Form):
    """Staff recording a grievance from the beneficiary's page (a call, a visit)."""

    type = SelectField(_l("Type"), choices=dict(TYPES), default="other")
    priority = SelectField(_l("Priority"), choices=dict(PRIORITIES), default="normal")
    description = TextAreaField(
        _l("What the person reports"),
        validators=[DataRequired(_l("Say what the problem is.")), Length(max=MAX_TEXT)],
    )
    due_on = DateField(_l("Answer by"), validators=[Optional()])


class EditForm(Form):
    type = SelectField(_l("Type"), choices=dict(TYPES))
    priority = SelectField(_l("Priority"), choices=dict(PRIORITIES))
    assignee_id = SelectField(
        _l("Assigned to"), coerce=_none_or_int, choices=[], validators=[Optional()]
    )
    due_on = DateField(_l("Answer by"), validators=[Optional()])


class StatusForm(Form):
    status = SelectField(_l("Move to"), choices=dict(STATUS_LABELS))


class NoteForm(Form):
    body = TextAreaField(
        _l("Note"), validators=[DataRequired(_l("Write the note first.")), Length(max=MAX_TEXT)]
    )


class VendorReportForm(Form):
    """A vendor reporting a problem from their phone."""

    type = SelectField(
        _l("What is it about"),
        choices={},  # in the vendor's language, set by the page (``VENDOR_TYPES``)
        default="payment",
    )
    project_id = SelectField(_l("Project"), coerce=int, choices=[])
    description = TextAreaField(
        _l("What happened"),
        validators=[DataRequired(_l("Say what happened.")), Length(max=MAX_TEXT)],
        description=_l("No codes or PINs, please."),
    )

"""Forms of the grievance pages: staff (open, edit, status, note) and the vendor's phone."""

from __future__ import annotations

from typing import ClassVar

from flask_babel import lazy_gettext as _l
from wtforms import DateField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.grievances.models import PRIORITIES, STATUS_LABELS, TYPES
from portal.grievances.services import MAX_TEXT


def _plain(labels: dict) -> dict:
    """Keys as labels: WTForms takes a dict of str; ``_translate`` puts the words in."""
    return {key: key for key in labels}


class _Translated:
    """Fills the choices of the named fields with their labels in the page's language."""

    LABELS: ClassVar[dict] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, labels in self.LABELS.items():
            getattr(self, name).choices = {key: str(label) for key, label in labels.items()}


def _none_or_int(value):
    return int(value) if value not in (None, "", "None") else None


class GrievanceForm(_Translated, Form):
    """Staff recording a grievance from the beneficiary's page (a call, a visit)."""

    LABELS: ClassVar[dict] = {"type": TYPES, "priority": PRIORITIES}
    type = SelectField(_l("Type"), choices=_plain(TYPES), default="other")
    priority = SelectField(_l("Priority"), choices=_plain(PRIORITIES), default="normal")
    description = TextAreaField(
        _l("What the person reports"),
        validators=[DataRequired(_l("Say what the problem is.")), Length(max=MAX_TEXT)],
    )
    due_on = DateField(_l("Answer by"), validators=[Optional()])


class EditForm(_Translated, Form):
    LABELS: ClassVar[dict] = {"type": TYPES, "priority": PRIORITIES}

    type = SelectField(_l("Type"), choices=_plain(TYPES))
    priority = SelectField(_l("Priority"), choices=_plain(PRIORITIES))
    assignee_id = SelectField(
        _l("Assigned to"), coerce=_none_or_int, choices=[], validators=[Optional()]
    )
    due_on = DateField(_l("Answer by"), validators=[Optional()])


class StatusForm(_Translated, Form):
    LABELS: ClassVar[dict] = {"status": STATUS_LABELS}

    status = SelectField(_l("Move to"), choices=_plain(STATUS_LABELS))


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

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import HiddenField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.imports.models import ALL_OR_NOTHING, VALID_ONLY


class UploadForm(Form):
    # Required, checked by the view: a file kept from an earlier attempt (``kept``) counts.
    file = FileField(
        _l("File (CSV or Excel .xlsx, required)"),
        description=_l("Start from the template; one person per row."),
        render_kw={"aria-required": "true"},
    )
    kept = HiddenField()
    project_id = SelectField(_l("Project"), coerce=int)
    group_id = SelectField(_l("Also add them to the group"), coerce=int, validators=[Optional()])
    source = StringField(
        _l("Source (required)"),
        validators=[DataRequired(), Length(max=120)],
        description=_l(
            "Where the file comes from, e.g. 'Ward 4 survey'. Its column mapping is "
            "remembered for the next file from the same source."
        ),
    )


class CommitForm(Form):
    mode = RadioField(
        _l("How to import"),
        choices=[],
        default=ALL_OR_NOTHING,
        # The page shows no choice where only one is possible (``imports/show.html``).
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # In the page's language, so per request.
        self.mode.choices = [(key, str(label)) for key, label in MODES.items()]


MODES = {
    ALL_OR_NOTHING: _l("All rows or none: stop if any row has a problem"),
    VALID_ONLY: _l("Only the valid, new rows: skip the rows listed in the report"),
}

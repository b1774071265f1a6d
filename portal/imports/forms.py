from __future__ import annotations

from flask_wtf.file import FileField
from wtforms import HiddenField, RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.imports.models import ALL_OR_NOTHING, VALID_ONLY


class UploadForm(Form):
    # Required, checked by the view: a file kept from an earlier attempt (``kept``) counts.
    file = FileField(
        "File (CSV or Excel .xlsx, required)",
        description="Start from the template; one person per row.",
        render_kw={"aria-required": "true"},
    )
    kept = HiddenField()
    project_id = SelectField("Project", coerce=int)
    group_id = SelectField("Also add them to the group", coerce=int, validators=[Optional()])
    source = StringField(
        "Source (required)",
        validators=[DataRequired(), Length(max=120)],
        description="Where the file comes from, e.g. 'Ward 4 survey'. Its column mapping is "
        "remembered for the next file from the same source.",
    )


class CommitForm(Form):
    mode = RadioField(
        "How to import",
        choices={
            ALL_OR_NOTHING: "All rows or none: stop if any row has a problem",
            VALID_ONLY: "Only the valid, new rows: skip the rows listed in the report",
        },
        default=ALL_OR_NOTHING,
        # The page shows no choice where only one is possible (``imports/show.html``).
    )

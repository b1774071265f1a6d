from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import RadioField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from portal.forms import Form
from portal.imports.models import ALL_OR_NOTHING, VALID_ONLY


class UploadForm(Form):
    file = FileField(
        "File (CSV or Excel .xlsx)",
        validators=[FileRequired("Choose a file to upload.")],
        description="Start from the template; one person per row.",
    )
    project_id = SelectField("Project", coerce=int)
    group_id = SelectField("Also add them to the group", coerce=int, validators=[Optional()])
    source = StringField(
        "Source",
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
    )

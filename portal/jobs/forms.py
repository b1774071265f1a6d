from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import NumberRange, Optional


class DiagnosticForm(FlaskForm):
    fail_times = IntegerField(
        "Fail the first tries",
        default=0,
        validators=[Optional(), NumberRange(min=0, max=10)],
        description="0 checks the pipeline; more shows how failures and retries look.",
    )

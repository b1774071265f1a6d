from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import IntegerField
from wtforms.validators import NumberRange, Optional

from portal.forms import Form


class DiagnosticForm(Form):
    fail_times = IntegerField(
        _l("Fail the first tries"),
        default=0,
        validators=[Optional(), NumberRange(min=0, max=10)],
        description=_l("0 checks the pipeline; more shows how failures and retries look."),
    )

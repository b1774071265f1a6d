from __future__ import annotations

from wtforms import StringField
from wtforms.validators import DataRequired, Length

from portal.forms import Form


class LookupForm(Form):
    token = StringField(
        "Card token",
        validators=[DataRequired(), Length(max=100)],
        description="Scan the card's QR code into this field, or type its token (AC1-…).",
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"},
    )

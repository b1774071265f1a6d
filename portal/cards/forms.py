from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from portal.forms import Form


class LookupForm(Form):
    token = StringField(
        _l("Card token"),
        validators=[DataRequired(), Length(max=100)],
        description=_l("Scan the card's QR code into this field, or type its token (AC1-…)."),
        render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"},
    )

"""The template editor's form: one text, checked against its kind's placeholders."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import TextAreaField
from wtforms.validators import ValidationError

from portal.forms import Form
from portal.messages import templates


class TemplateForm(Form):
    body = TextAreaField(_l("Message"), render_kw={"rows": 6, "maxlength": templates.MAX_BODY})

    def __init__(self, *args, kind, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind

    def validate_body(self, field):
        found = templates.problems(self.kind, field.data or "")
        if found:
            raise ValidationError(" ".join(found))

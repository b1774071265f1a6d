"""The language choice, on the staff account page and the vendor's phone."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField

from portal.forms import Form
from portal.i18n.locales import PAGE_LOCALES, choices


class LanguageForm(Form):
    locale = SelectField(_l("Language"), choices=[])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Built per request: each name is shown in itself and in the page's language.
        self.locale.choices = choices(PAGE_LOCALES)

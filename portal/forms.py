"""The base of every form: the portal's input rule applied to each text field it binds.

Every form subclasses ``Form`` (a test walks them all). Its ``Meta`` puts ``PlainText`` first in
the validators of each text field (StringField and its kinds: password, email, telephone, hidden,
textarea), so a control character becomes a field error before any other check or lookup sees
the value. Forms read URL-encoded or multipart bodies only: Flask-WTF would otherwise also take
a JSON body, whose values may be numbers, lists or objects where a field expects text.
"""

from __future__ import annotations

from flask import request
from flask_babel import get_translations, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto, _is_submitted
from werkzeug.datastructures import CombinedMultiDict
from wtforms import StringField, TextAreaField
from wtforms.fields.core import UnboundField
from wtforms.validators import StopValidation

from portal.inputs import CONTROL_MESSAGE, NOT_TEXT_MESSAGE, text_problem

NOT_A_FILE = "must be typed text, not a file"
# The whole sentence for each problem, the field's label in it.
SENTENCES = {
    CONTROL_MESSAGE: _l("%(field)s contains a control character; remove it."),
    NOT_TEXT_MESSAGE: _l(
        "%(field)s contains characters that are not valid text (not UTF-8); retype it."
    ),
    NOT_A_FILE: _l("%(field)s must be typed text, not a file."),
}


class PlainText:
    """Refuse what the input rule refuses; multi-line fields keep tab, newline and CR."""

    def __init__(self, multiline: bool = False):
        self.multiline = multiline

    def __call__(self, form, field) -> None:
        for value in field.raw_data or ():
            # A file sent under a text field's name is not text either.
            problem = text_problem(value, self.multiline) if isinstance(value, str) else NOT_A_FILE
            if problem:
                field.errors[:] = []
                raise StopValidation(str(SENTENCES[problem]) % {"field": field.label.text})


class _Messages:
    """WTForms' own messages ("This field is required.") in the page's language: the portal's
    catalogs first (they hold Nepali, which WTForms does not ship), then WTForms' catalogs."""

    def __init__(self, fallback):
        self.fallback = fallback

    def gettext(self, string):
        ours = get_translations().ugettext(string)
        return ours if ours != string else self.fallback.gettext(string)

    def ngettext(self, singular, plural, n):
        ours = get_translations().ungettext(singular, plural, n)
        if ours not in (singular, plural):
            return ours
        return self.fallback.ngettext(singular, plural, n)


def _choices_in_page_language(unbound: UnboundField) -> UnboundField:
    """A select declared with a dict of translatable labels (``_l()``, read at class definition)
    gets them as text in the language of the request that binds it: WTForms takes only plain
    strings in its dict shorthand (anything else is a deprecated shape, an error in tests)."""
    choices = unbound.kwargs.get("choices")
    if not isinstance(choices, dict) or all(isinstance(v, (str, dict)) for v in choices.values()):
        return unbound
    kwargs = {**unbound.kwargs, "choices": {k: str(v) for k, v in choices.items()}}
    copy = UnboundField(unbound.field_class, *unbound.args, name=unbound.name, **kwargs)
    copy.creation_counter = unbound.creation_counter
    return copy


class Form(FlaskForm):
    class Meta(FlaskForm.Meta):
        def get_translations(self, form):
            return _Messages(super().get_translations(form))

        def bind_field(self, form, unbound_field, options):
            unbound_field = _choices_in_page_language(unbound_field)
            field = super().bind_field(form, unbound_field, options)
            if isinstance(field, StringField):
                multiline = isinstance(field, TextAreaField)
                field.validators = [PlainText(multiline), *field.validators]
            return field

        def wrap_formdata(self, form, formdata):
            if formdata is _Auto:
                if not _is_submitted():
                    return None
                if request.files:
                    return CombinedMultiDict((request.files, request.form))
                return request.form or None
            return formdata


def _wtforms_messages() -> None:  # pragma: no cover - never called
    """WTForms' messages the portal's forms can show, listed for ``make translations-extract``
    so the catalogs carry them (WTForms itself ships no Nepali)."""
    _("This field is required.")
    _("Invalid email address.")
    _("Not a valid choice.")
    _("Not a valid integer value.")
    _("Field must be equal to %(other_name)s.")
    ngettext(
        "Field cannot be longer than %(max)d character.",
        "Field cannot be longer than %(max)d characters.",
        1,
    )
    ngettext(
        "Field must be at least %(min)d character long.",
        "Field must be at least %(min)d characters long.",
        1,
    )
    ngettext(
        "Field must be exactly %(max)d character long.",
        "Field must be exactly %(max)d characters long.",
        1,
    )
    _("Field must be between %(min)d and %(max)d characters long.")
    _("The CSRF token is missing.")
    _("The CSRF token is invalid.")
    _("The CSRF token has expired.")
    _("The CSRF tokens do not match.")

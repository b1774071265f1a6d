"""The base of every form: the portal's input rule applied to each text field it binds.

Every form subclasses ``Form`` (a test walks them all). Its ``Meta`` puts ``PlainText`` first in
the validators of each text field (StringField and its kinds: password, email, telephone, hidden,
textarea), so a control character becomes a field error before any other check or lookup sees
the value. Forms read URL-encoded or multipart bodies only: Flask-WTF would otherwise also take
a JSON body, whose values may be numbers, lists or objects where a field expects text.
"""

from __future__ import annotations

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto, _is_submitted
from werkzeug.datastructures import CombinedMultiDict
from wtforms import StringField, TextAreaField
from wtforms.validators import StopValidation

from portal.inputs import text_problem


class PlainText:
    """Refuse what the input rule refuses; multi-line fields keep tab, newline and CR."""

    def __init__(self, multiline: bool = False):
        self.multiline = multiline

    def __call__(self, form, field) -> None:
        for value in field.raw_data or ():
            if isinstance(value, str):
                problem = text_problem(value, self.multiline)
            else:  # a file sent under a text field's name
                problem = "must be typed text, not a file"
            if problem:
                field.errors[:] = []
                raise StopValidation(f"{field.label.text} {problem}.")


class Form(FlaskForm):
    class Meta(FlaskForm.Meta):
        def bind_field(self, form, unbound_field, options):
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

"""Selects declared with translatable labels bind as text in the request's language."""

from __future__ import annotations

import warnings

import pytest
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wtforms import SelectField

from portal.forms import Form


class _Pick(Form):
    kind = SelectField("Kind", choices={"shop": _l("Shop"), "pharmacy": _l("Pharmacy")})


@pytest.mark.parametrize(("locale", "shop"), [("en", "Shop"), ("ne", "पसल")])
def test_lazy_labels_bind_in_the_page_language_without_a_warning(app, locale, shop):
    with app.test_request_context("/"), force_locale(locale), warnings.catch_warnings():
        warnings.simplefilter("error")
        form = _Pick(meta={"csrf": False})
        labels = dict((c.value, c.label) for c in form.kind.iter_choices())
    assert labels["shop"] == shop
    assert all(isinstance(label, str) for label in labels.values())


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=12), max_size=5))
def test_any_dict_of_labels_keeps_its_keys_and_words(app, labels):
    lazy = {key: _l(value) if value else value for key, value in labels.items()}

    class Dynamic(Form):
        choice = SelectField("Choice", choices=lazy)

    with app.test_request_context("/"), warnings.catch_warnings():
        warnings.simplefilter("error")
        form = Dynamic(meta={"csrf": False})
        bound = [(c.value, c.label) for c in form.choice.iter_choices()]
    assert [value for value, _label in bound] == list(labels)
    assert all(isinstance(label, str) for _value, label in bound)

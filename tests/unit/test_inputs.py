"""The input rule (portal/inputs.py, portal/forms.py) on generated text and parameters."""

from __future__ import annotations

import unicodedata
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from wtforms import PasswordField, StringField, TextAreaField

from portal import inputs
from portal.forms import Form
from tests.support import ci

EXAMPLES = 400 if ci.ci_enabled() else 100
# The app is only read (a request context, no database writes): sharing it is fine.
WITH_APP = {"suppress_health_check": [HealthCheck.function_scoped_fixture]}
any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=30)
# What a URL can carry: a lone surrogate has no UTF-8 form, so no client can send one in a query
# string (undecodable bytes there are a different input, tested with raw requests).
url_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


def _refused_char(char: str, multiline: bool) -> bool:
    category = unicodedata.category(char)
    if category == "Cc":
        return not (multiline and char in "\t\n\r")
    return category == "Cs" or char == "\ufffd"


@settings(derandomize=True, max_examples=EXAMPLES, database=None)
@given(any_text, st.booleans())
def test_text_problem_is_exactly_the_rule(text, multiline):
    expected = any(_refused_char(c, multiline) for c in text)
    assert (inputs.text_problem(text, multiline) is not None) is expected


@settings(derandomize=True, max_examples=EXAMPLES, database=None)
@given(any_text)
def test_export_cleaning_leaves_text_that_keeps_the_rule(text):
    cleaned = inputs.clean_for_export(text)
    assert inputs.text_problem(cleaned, multiline=True) is None
    cleaned.encode("utf-8")  # raises on a lone surrogate left to break the encoder
    if inputs.text_problem(text, multiline=True) is None:
        assert cleaned == text


@settings(derandomize=True, max_examples=EXAMPLES, database=None)
@given(
    st.one_of(
        any_text,
        st.text("0123456789²³¹٠١٢३४५①", max_size=14),
        st.integers(min_value=-(10**40), max_value=10**40),
        st.integers(min_value=-(10**40), max_value=10**40).map(str),
        st.booleans(),
        st.floats(),
        st.none(),
    )
)
def test_parse_id_accepts_only_ids_in_range(value):
    number = inputs.parse_id(value)
    if number is not None:
        assert type(number) is int and 1 <= number <= inputs.MAX_ID
        assert not isinstance(value, bool | float)
        assert str(value).isascii()


@pytest.mark.parametrize(
    ("value", "expected"), [("7", 7), (7, 7), (str(inputs.MAX_ID), inputs.MAX_ID)]
)
def test_parse_id_reads_real_ids(value, expected):
    assert inputs.parse_id(value) == expected


@pytest.mark.parametrize(
    "value", ["²", "१", "0", "-1", str(inputs.MAX_ID + 1), "9" * 30, True, 1.0, " 1", "1e3"]
)
def test_parse_id_refuses(value):
    assert inputs.parse_id(value) is None


@settings(derandomize=True, max_examples=EXAMPLES, database=None, **WITH_APP)
@given(
    st.dictionaries(
        st.sampled_from(["project", "page", "since", "status", "q"]),
        st.one_of(
            url_text,
            st.integers(min_value=-(10**30), max_value=10**30).map(str),
            st.dates(min_value=date(1, 1, 1)).map(date.isoformat),
        ),
    )
)
def test_query_helpers_return_their_kind_or_answer_400(app, args):
    """Each helper returns a value of its kind, in range, or raises the 400, nothing else."""
    with app.test_request_context(query_string=args):
        for read in (
            lambda: inputs.id_arg("project"),
            lambda: inputs.page_arg(),
            lambda: inputs.date_arg("since"),
            lambda: inputs.choice_arg("status", {"active", "closed"}),
            lambda: inputs.text_arg("q"),
        ):
            try:
                value = read()
            except inputs.BadParameter as exc:
                assert exc.code == 400 and "“" in exc.description
                continue
            if isinstance(value, date):
                assert inputs.MIN_DATE <= value <= inputs.MAX_DATE
            elif isinstance(value, int):
                assert 1 <= value <= max(inputs.MAX_ID, inputs.MAX_PAGE)
            elif isinstance(value, str):
                assert inputs.text_problem(value) is None and len(value) <= 100


def test_a_bad_parameter_names_itself_safely():
    assert "“page”" in inputs.BadParameter("page", "unknown").description
    assert "\x00" not in inputs.BadParameter("a\x00", "unknown").description


class _Probe(Form):
    name = StringField("Name")
    note = TextAreaField("Note")
    secret = PasswordField("Secret")


@settings(derandomize=True, max_examples=EXAMPLES, database=None, **WITH_APP)
@given(name=any_text, note=any_text, secret=any_text)
def test_every_text_field_of_a_form_keeps_the_rule(app, name, note, secret):
    with app.test_request_context(method="POST"):
        form = _Probe(
            formdata=MultiDict({"name": name, "note": note, "secret": secret}),
            meta={"csrf": False},
        )
        valid = form.validate()
        expected = {
            "name": inputs.text_problem(name) is None,
            "note": inputs.text_problem(note, multiline=True) is None,
            "secret": inputs.text_problem(secret) is None,
        }
        assert valid is all(expected.values())
        for field, ok in expected.items():
            errors = getattr(form, field).errors
            assert (not errors) is ok
            if errors:
                assert errors[0].startswith(getattr(form, field).label.text + " ")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("Sita\x00Rai", "Name contains a control character; remove it."),
        ("\x1b[31mred", "Name contains a control character; remove it."),
        ("bell\x07", "Name contains a control character; remove it."),
        ("next\x85line", "Name contains a control character; remove it."),
        ("bad \ufffd bytes", "Name contains characters that are not valid text (not UTF-8)"),
    ],
)
def test_the_field_error_says_what_to_do(app, value, message):
    with app.test_request_context(method="POST"):
        form = _Probe(formdata=MultiDict({"name": value}), meta={"csrf": False})
        assert not form.validate()
        assert form.name.errors[0].startswith(message)


def test_a_textarea_keeps_lines_and_tabs(app):
    with app.test_request_context(method="POST"):
        form = _Probe(formdata=MultiDict({"note": "one\r\ntwo\tthree"}), meta={"csrf": False})
        assert form.validate()
        assert form.note.data == "one\r\ntwo\tthree"


def test_a_form_does_not_read_a_json_body(app):
    """Flask-WTF would take a JSON object's numbers and lists as field values."""
    with app.test_request_context(method="POST", json={"name": ["x"], "note": 5}):
        form = _Probe(meta={"csrf": False})
        assert form.name.data is None and form.note.data is None

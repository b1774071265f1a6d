"""National IDs in any script's digits find one person; dates stay within one rule per kind
(project dates, birth dates, retention), in forms, services and imports. Generated input."""

from __future__ import annotations

import itertools
import os
import unicodedata
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import dateranges
from portal.beneficiaries import normalize
from portal.beneficiaries import services as beneficiaries
from portal.crypto import blind_index
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.imports.validation import RowValidator

EXAMPLES = 400 if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else 100
TODAY = date.today()
NAMES = itertools.count(1)

# The zero of each script whose digits people type IDs in (Nd: the ten follow it).
ZEROS = {
    "ascii": "0",
    "devanagari": "\u0966",
    "bengali": "\u09e6",
    "gurmukhi": "\u0a66",
    "gujarati": "\u0ae6",
    "oriya": "\u0b66",
    "tamil": "\u0be6",
    "telugu": "\u0c66",
    "kannada": "\u0ce6",
    "malayalam": "\u0d66",
    "sinhala": "\u0de6",
    "thai": "\u0e50",
    "lao": "\u0ed0",
    "tibetan": "\u0f20",
    "myanmar": "\u1040",
    "khmer": "\u17e0",
    "limbu": "\u1946",
    "arabic-indic": "\u0660",
    "persian": "\u06f0",
    "nko": "\u07c0",
    "fullwidth": "\uff10",
}
SEPARATORS = [" ", "-", ".", "/", "\u00a0", "\u2010", "\u2011", "\u2013", "\u2212", "\u3000"]


@pytest.fixture(scope="module")
def index_key():
    """A blind-index key for rows validated without an app (an app's own key replaces it)."""
    from portal import crypto

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(crypto._keys, "index", b"k" * 32)
        yield


def spelled(digits: str, script: str) -> str:
    zero = ord(ZEROS[script])
    return "".join(chr(zero + int(d)) for d in digits)


@st.composite
def id_spellings(draw):
    """An ASCII ID and the same ID typed with other scripts' digits and other separators."""
    prefix = draw(st.sampled_from(["", "NP", "np", "Kth"]))
    groups = draw(st.lists(st.text("0123456789", min_size=1, max_size=6), min_size=1, max_size=4))
    digits = "".join(groups)
    if len(prefix + digits) < 4:
        digits = digits.rjust(4 - len(prefix), "0")
        groups = [digits]
    scripts = draw(
        st.lists(st.sampled_from(sorted(ZEROS)), min_size=len(groups), max_size=len(groups))
    )
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(groups), max_size=len(groups)))
    typed = prefix + "".join(
        sep + spelled(g, s) for sep, g, s in zip(seps, groups, scripts, strict=True)
    )
    return (prefix + digits).upper(), typed


def test_every_script_listed_is_decimal_digits():
    for script, zero in ZEROS.items():
        assert [unicodedata.decimal(chr(ord(zero) + i)) for i in range(10)] == list(range(10))
        assert normalize.national_id("ID" + spelled("0123456789", script)) == "ID0123456789"


@settings(derandomize=True, max_examples=EXAMPLES, deadline=None)
@given(spellings=id_spellings())
def test_any_spelling_of_an_id_has_the_ascii_ids_blind_index(index_key, spellings):
    ascii_id, typed = spellings
    assert normalize.national_id(typed) == ascii_id
    assert blind_index("nid:" + normalize.national_id(typed)) == blind_index("nid:" + ascii_id)
    validator = RowValidator({"N": "name", "P": "phone", "I": "national_id"}, ["N", "P", "I"], "NP")
    row = validator.validate(2, ["Sita Rai", "9841000001", typed])
    assert row.national_id == ascii_id
    assert row.national_id_index == blind_index("nid:" + ascii_id)


@pytest.mark.parametrize(
    "raw",
    [
        "NP\u00b2345",  # superscript two: not a decimal digit
        "\u2460\u2461\u2462\u2463",  # circled digits
        "\u216b1234",  # Roman numeral twelve
        "stra\u00dfe1",  # upper() would make it STRASSE1
        "\u0130STANBUL",  # dotted capital I
        "\u0968\u0966\u0968\u096c#",  # Devanagari digits and a symbol
        "12\u200b34",  # a zero-width space hides in the ID
        "\u0967" * 40,  # too long once read
    ],
)
def test_lookalikes_that_are_not_letters_or_digits_are_refused(raw):
    with pytest.raises(normalize.InvalidValue) as refused:
        normalize.national_id(raw)
    assert refused.value.field == "national_id"


def test_enrolment_search_and_import_agree_on_a_devanagari_id(
    app, make_user, make_beneficiary, index_key
):
    person = make_beneficiary(national_id="\u0968\u0966\u0968\u096c-\u0967\u0968\u0969\u096a")
    assert person.pii.national_id == "20261234"
    admin = make_user("admin")
    query = beneficiaries.search(admin, beneficiaries.ListQuery(q="2026-1234"))
    assert db.session.scalars(query).all() == [person]
    query = beneficiaries.search(admin, beneficiaries.ListQuery(q="२०२६ १२३४"))
    assert db.session.scalars(query).all() == [person]
    with pytest.raises(normalize.InvalidValue, match="already enrolled"):
        make_beneficiary(national_id="20261234")


# --------------------------------------------------------------------------- dates


every_date = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))


def near(*edges: date) -> st.SearchStrategy[date]:
    """Dates within a few days of each edge, and anywhere in the calendar."""
    close = st.sampled_from(edges).flatmap(
        lambda edge: st.integers(-3, 3).map(
            lambda days: (
                edge + timedelta(days=days)
                if date.min + timedelta(days=3) < edge < date.max - timedelta(days=3)
                else edge
            )
        )
    )
    return st.one_of(close, every_date, st.sampled_from([date(1, 1, 1), date(9999, 12, 31)]))


@settings(derandomize=True, max_examples=EXAMPLES, deadline=None)
@given(value=near(date(2000, 1, 1), date(2100, 12, 31)))
def test_project_dates_are_2000_to_2100(value):
    problem = dateranges.PROJECT.problem(value)
    assert (problem is None) == (date(2000, 1, 1) <= value <= date(2100, 12, 31))
    if problem:
        assert "from 2000 to 2100" in problem


@settings(derandomize=True, max_examples=EXAMPLES, deadline=None)
@given(value=near(date(1900, 1, 1), TODAY))
def test_birth_dates_are_1900_to_today_with_the_right_message(index_key, value):
    if value < date(1900, 1, 1):
        expected = "A date of birth cannot be before 1900."
    elif value > TODAY:
        expected = "A date of birth cannot be in the future."
    else:
        expected = None
    assert dateranges.BIRTH.problem(value, TODAY) == expected
    validator = RowValidator(
        {"N": "name", "P": "phone", "D": "date_of_birth"}, ["N", "P", "D"], "NP", today=TODAY
    )
    row = validator.validate(2, ["Sita Rai", "9841000001", value.isoformat()])
    if expected is None:
        assert row.date_of_birth == value.isoformat()
    else:
        assert [(e.field, e.message) for e in row] == [("date_of_birth", expected)]


@settings(derandomize=True, max_examples=EXAMPLES, deadline=None)
@given(value=near(TODAY, date(2100, 12, 31)))
def test_retention_dates_are_after_today_to_2100(index_key, value):
    problem = dateranges.RETENTION.problem(value, TODAY)
    assert (problem is None) == (TODAY < value <= date(2100, 12, 31))
    validator = RowValidator(
        {"N": "name", "P": "phone", "R": "retention_until"}, ["N", "P", "R"], "NP", today=TODAY
    )
    row = validator.validate(2, ["Sita Rai", "9841000001", value.isoformat()])
    if problem is None:
        assert row.retention_until == value
    else:
        assert [(e.field, e.message) for e in row] == [("retention_until", problem)]


@settings(
    derandomize=True,
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(start=near(date(2000, 1, 1), date(2100, 12, 31)))
def test_the_project_form_and_service_keep_to_the_range(app, client, make_user, login, start):
    from portal.projects import services as projects
    from portal.projects.models import Project

    admin = make_user("admin")
    login(client, admin)
    problem = dateranges.PROJECT.problem(start)
    before = db.session.query(Project).count()
    page = client.post(
        "/projects/new",
        data={
            "name": f"Project {next(NAMES)}",
            "type": "cva",
            "currency": "NPR",
            "start_date": start.isoformat(),
        },
    )
    if problem is None:
        assert page.status_code == 302
        assert db.session.query(Project).count() == before + 1
    else:
        assert page.status_code == 200 and problem in page.get_data(as_text=True)
        assert db.session.query(Project).count() == before
        with pytest.raises(ValidationFailed) as refused:
            projects.create({"name": "Direct", "type": "cva", "start_date": start}, admin)
        assert refused.value.fields == {"start_date": problem}
        db.session.rollback()


def test_year_0001_and_9999_are_refused_with_clear_messages(
    app, client, make_user, login, make_project
):
    from portal.projects import services as projects

    login(client, make_user("admin"))
    for day in ("0001-01-01", "9999-12-31"):
        page = client.post(
            "/projects/new",
            data={"name": "Far", "type": "cva", "currency": "NPR", "end_date": day},
        )
        assert "Use a date from 2000 to 2100" in page.get_data(as_text=True)
    project = make_project(start_date=date(2026, 1, 1))
    with pytest.raises(ValidationFailed) as refused:
        projects.update(project, {"end_date": date(2025, 12, 31)})
    assert refused.value.fields == {"end_date": "The end comes before the start."}

    with pytest.raises(normalize.InvalidValue, match="cannot be before 1900"):
        normalize.date_of_birth(date(1, 1, 1))
    with pytest.raises(normalize.InvalidValue, match="cannot be in the future"):
        normalize.date_of_birth(date(9999, 12, 31))


def test_the_enrolment_form_names_the_birth_date_problem(app, client, make_user, login):
    login(client, make_user("admin"))
    page = client.post(
        "/beneficiaries/new",
        data={
            "name": "Sita Rai",
            "phone": "9841000001",
            "date_of_birth": "0001-01-01",
            "gender": "female",
            "language": "ne",
            "status": "active",
            "consent": "yes",
            "project_id": 0,
        },
    )
    assert page.status_code == 200
    assert "A date of birth cannot be before 1900." in page.get_data(as_text=True)


def test_a_retention_date_in_the_past_is_refused_when_set(make_beneficiary):
    with pytest.raises(normalize.InvalidValue) as refused:
        make_beneficiary(retention_until=TODAY)
    assert refused.value.field == "retention_until"
    person = make_beneficiary(retention_until=TODAY + timedelta(days=30))
    with pytest.raises(normalize.InvalidValue, match="2100-12-31"):
        beneficiaries.update(
            person,
            {"name": "X", "phone": person.pii.phone, "retention_until": date(9999, 12, 31)},
        )

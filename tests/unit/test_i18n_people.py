"""The people and projects pages in the user's language: the beneficiary list and an import's
report in Nepali (with Devanagari digits), a project page in Arabic (right to left), and an
import's row problems kept as codes and values and written in the reader's language."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from flask_babel import force_locale
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.extensions import db
from portal.i18n import formatting
from portal.imports import problems
from portal.imports.fields import FIELDS
from portal.imports.validation import RowValidator
from tests.unit.test_import_flow import WITH_PROBLEMS, batch_from, map_and_check, upload

DEVANAGARI = re.compile("[०-९]")
LATIN_DIGIT = re.compile("[0-9]")


def html_tag(page: str) -> str:
    return re.search(r"<html[^>]*>", page).group(0)


def speaks(user, locale: str) -> None:
    """The user's language, as the account page saves it."""
    user.locale = locale
    db.session.commit()


@pytest.fixture
def staff(client, make_user, login, make_project):
    user = make_user("admin")
    project = make_project(name="Winter cash", status="active", creator=user)
    login(client, user)
    return user, project


def test_the_beneficiary_list_in_nepali(client, staff, make_beneficiary):
    user, project = staff
    for _ in range(3):
        make_beneficiary(project=project)
    speaks(user, "ne")
    page = client.get("/beneficiaries/").get_data(as_text=True)
    assert 'lang="ne"' in html_tag(page)
    for words in ("लाभग्राही", "खोज र छनोट", "खोज्नुहोस्", "सन्दर्भ नम्बर", "दर्ता मिति"):
        assert words in page, words
    assert "Search and filters" not in page and "Enrolled</th>" not in page
    # The enrolment dates are written by Babel in Devanagari digits.
    dates = re.findall(r'<td class="small hide-sm">([^<]+)</td>', page)
    assert dates and all(DEVANAGARI.search(d) and not LATIN_DIGIT.search(d) for d in dates)
    # The scripts' words come in the page too, with the digits they write counts in.
    block = re.search(r'<script type="application/json" id="i18n-strings">(.*?)</script>', page)
    strings = json.loads(block.group(1))
    assert strings["selection_count"] == "छानिएका मानिस: {count}"
    assert strings["digits"] == "०१२३४५६७८९"


def test_a_beneficiary_page_in_nepali_shows_money_in_devanagari(client, staff, make_beneficiary):
    from tests.support import chain

    user, project = staff
    person = make_beneficiary(project=project, language="ne")
    chain.pretend_deployed(project)
    chain.entitle(project, person, 125_000)
    speaks(user, "ne")
    page = client.get(f"/beneficiaries/{person.id}").get_data(as_text=True)
    assert "व्यक्तिगत डाटा" in page and "कार्यक्रमको अभिलेख" in page
    assert re.search(r"[०-९][०-९,]*\.[०-९]{2}", page), "an amount in Devanagari digits"


def test_an_import_report_in_nepali(client, staff, worker):
    user, project = staff
    batch = map_and_check(client, batch_from(upload(client, project, WITH_PROBLEMS)), worker)
    assert {e.get("code") for e in batch.errors_preview} >= {"same_phone_as_row", "formula_start"}
    speaks(user, "ne")
    page = client.get(f"/imports/{batch.id}").get_data(as_text=True)
    assert 'lang="ne"' in html_tag(page)
    # Sentences written now, from the codes, with the row numbers in Devanagari digits.
    assert "पङ्क्ति २ को जस्तै फोन नम्बर।" in page
    assert "“=” बाट सुरु हुन्छ, जसलाई स्प्रेडसिटले सूत्रको रूपमा चलाउँछ।" in page
    assert "Same phone number as row" not in page
    assert "समस्या (" in page and '<span class="stat__n" data-count="total">६</span>' in page
    # The field column names the field in the reader's language.
    assert "फोन नम्बर</td>" in page
    # The downloadable report stays the English file it always was.
    report = client.get(f"/imports/{batch.id}/errors.csv").get_data(as_text=True)
    assert "Same phone number as row 2" in report


def test_an_import_row_kept_before_codes_stays_readable(client, staff, worker):
    user, project = staff
    batch = map_and_check(client, batch_from(upload(client, project, WITH_PROBLEMS)), worker)
    batch.errors_preview_json = (
        '[{"row": 4, "field": "phone", "message": "Not a valid phone number for NP."},'
        ' {"row": 5, "field": "", "message": "An English sentence from before.", "code": "gone"}]'
    )
    speaks(user, "ne")
    page = client.get(f"/imports/{batch.id}").get_data(as_text=True)
    assert "Not a valid phone number for NP." in page
    assert "An English sentence from before." in page


def make_group(project, name: str = "Ward 4"):
    from portal.beneficiaries import groups

    group = groups.create(project, name, "Winter cash")
    db.session.commit()
    return group


def test_a_project_page_in_arabic(client, staff):
    user, project = staff
    make_group(project)
    speaks(user, "ar")
    page = client.get(f"/projects/{project.id}").get_data(as_text=True)
    assert 'dir="rtl"' in html_tag(page) and 'lang="ar"' in html_tag(page)
    for words in ("نبذة", "العملة", "المجموعات", "حفظ الأعضاء"):
        assert words in page, words
    assert "Save members" not in page
    # The arrow along the reading direction is one the stylesheet turns round.
    assert '<span class="dir-arrow" aria-hidden="true">→</span>' in page


def test_the_projects_list_and_a_group_in_nepali(client, staff):
    user, project = staff
    group = make_group(project)
    speaks(user, "ne")
    listing = client.get("/projects/").get_data(as_text=True)
    assert "परियोजना" in listing and "CVA भौचर (पसलमा खर्च गरिने)" in listing
    shown = client.get(f"/groups/{group.id}").get_data(as_text=True)
    assert "यो समूहमा अहिलेसम्म कोही छैन।" in shown


# Row problems ------------------------------------------------------------------------------

HEADERS = [f.label for f in FIELDS]
MAPPING = {f.label: f.name for f in FIELDS}


def problems_of(**values):
    validator = RowValidator(MAPPING, HEADERS, "NP", today=date(2026, 11, 21))
    cells = {"name": "Sita Kumari", "phone": "9841000001", **values}
    result = validator.validate(7, [cells.get(f.name, "") for f in FIELDS])
    assert isinstance(result, list), result
    return {e.field: e for e in result}


@pytest.mark.parametrize(
    ("cells", "field", "code", "values"),
    [
        ({"name": ""}, "name", "name_required", None),
        ({"name": "x" * 201}, "name", "name_too_long", {"max": 200}),
        ({"phone": "12"}, "phone", "phone_invalid", {"country": "NP"}),
        ({"date_of_birth": "04/13/1990"}, "date_of_birth", "month_first", None),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth", "birth_too_late", None),
        ({"latitude": "91", "longitude": "1"}, "latitude", "degrees_range", {"limit": 90}),
        ({"location": "=SUM(A1)"}, "location", "formula_start", {"first": "="}),
        ({"gender": "x"}, "gender", "gender_unknown", None),
    ],
)
def test_each_row_problem_keeps_its_code_and_values(cells, field, code, values):
    error = problems_of(**cells)[field]
    assert (error.code, error.values) == (code, values)
    assert error.message == problems.english(code, values)


def test_a_problem_reads_in_the_readers_language(app):
    entry = {"row": 9, "field": "phone", "message": "x", "code": "same_phone_as_row"}
    entry["values"] = {"row": 12}
    with app.test_request_context(), force_locale("ne"):
        assert problems.sentence(entry) == "पङ्क्ति १२ को जस्तै फोन नम्बर।"
        assert problems.field_label("phone") == "फोन नम्बर"
    with app.test_request_context(), force_locale("ar"):
        assert problems.sentence(entry) == "رقم الهاتف نفسه في الصف 12."
    with app.test_request_context(), force_locale("en"):
        assert problems.sentence(entry) == "Same phone number as row 12."


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    code=st.one_of(st.sampled_from(sorted(problems.TEXTS)), st.text(max_size=12)),
    values=st.dictionaries(
        st.sampled_from(["row", "max", "limit", "country", "codes", "error", "first", "x"]),
        st.one_of(st.integers(-(10**6), 10**6), st.text(max_size=10)),
        max_size=4,
    ),
    message=st.text(max_size=40),
    locale=st.sampled_from(["en", "ne", "ar"]),
)
def test_any_entry_reads_as_a_sentence_and_never_fails(app, code, values, message, locale):
    entry = {"row": 1, "field": "", "message": message, "code": code, "values": values}
    with app.test_request_context(), force_locale(locale):
        text = problems.sentence(entry)
        wanted = {
            name: value if isinstance(value, str) else formatting.number(value)
            for name, value in values.items()
        }
    names = set(re.findall(r"%\((\w+)\)s", problems.TEXTS.get(code, "")))
    if code not in problems.TEXTS or not names <= set(values):
        assert text == message  # unknown, or values that no longer fit: the English kept
    else:
        assert all(wanted[name] in text for name in names)
        if locale == "en" and not names:
            assert text == problems.TEXTS[code]

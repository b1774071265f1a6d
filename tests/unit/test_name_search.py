"""Name search: spelling rules (any script, case, accents, spacing), the keyed index kept on
enrolment, edit, import and erasure, its rebuild, and what it stores."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal import crypto
from portal.beneficiaries import name_search
from portal.beneficiaries import services as beneficiaries
from portal.beneficiaries.models import BeneficiaryNameIndex, NameIndexState
from portal.extensions import db


@pytest.fixture(autouse=True)
def keys():
    crypto.configure(crypto.generate_key())


def finds(query: str, name: str, location: str | None = None) -> bool:
    """Whether the index of a person with ``name`` answers ``query`` (every word matching)."""
    stored = name_search.person_terms(name, location)
    wanted = name_search.query_words(query)
    return bool(wanted) and all(options & stored for options in wanted)


# Spelling rules ------------------------------------------------------------------------------

PAIRS = [
    ("Gita", "गीता"),
    ("Gita Magar", "गीता मगर"),
    ("Sita Thapa", "सीता थापा"),
    ("Shyam Bahadur Shrestha", "श्याम बहादुर श्रेष्ठ"),
    ("Laxmi Sharma", "लक्ष्मी शर्मा"),
    ("Ram Prasad Poudel", "राम प्रसाद पौडेल"),
    ("Krishna Adhikari", "कृष्ण अधिकारी"),
    ("Bikash Gurung", "विकास गुरुङ"),
    ("Ishwor Dahal", "ईश्वर दाहाल"),
    ("Chhetri", "छेत्री"),
    ("Sangita Lama", "संगीता लामा"),
    ("Gita", "গীতা"),  # Bengali
]


@pytest.mark.parametrize(("latin", "devanagari"), PAIRS)
def test_latin_and_devanagari_spellings_find_each_other(latin, devanagari):
    assert finds(latin, devanagari)
    assert finds(devanagari, latin)
    for word in latin.split():
        assert finds(word, devanagari), word
    for word in devanagari.split():
        assert finds(word, latin), word


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("gita", "GITA MAGAR"),
        ("Gītā", "Gita"),
        ("jose", "José Müller"),
        ("muller", "José Müller"),
        ("  gita   magar ", "Gita Magar"),
        ("magar gita", "Gita Magar"),
        ("obrien", "Mary O'Brien"),
        ("Ｇｉｔａ", "Gita"),  # fullwidth letters
        ("rai", "Thapa-Rai"),
        ("ma", "Gita Magar"),
        ("मग", "Gita Magar"),
    ],
)
def test_case_accents_spacing_order_and_prefixes_are_folded(query, name):
    assert finds(query, name)


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("Rima", "Ram Thapa"),  # within one script, skeletons are not compared
        ("Gita Rai", "Gita Magar"),  # every word must match
        ("agar", "Gita Magar"),  # a word is matched from its start
        ("Sita", "Gita"),
    ],
)
def test_other_names_are_not_found(query, name):
    assert not finds(query, name)


def test_words_of_one_letter_and_coordinates_are_not_looked_up():
    assert name_search.query_words("a b") == []
    assert not name_search.is_name_query("9841234567")
    assert not name_search.is_name_query("+977 984-1234567")
    assert [w for w, _ in name_search.words("Ward 4, Bharatpur (27.68, 84.43)")] == [
        "ward",
        "4",
        "bharatpur",
    ]


def test_the_key_decides_the_hashes():
    before = name_search.person_terms("Gita Magar", None)
    crypto.configure(crypto.generate_key())
    assert not before & name_search.person_terms("Gita Magar", None)


def test_name_and_location_words_hash_apart():
    assert not name_search.terms("n", "Gorkha") & name_search.terms("l", "Gorkha")


LATIN_WORD = st.text(alphabet=string.ascii_letters + "áéíóúñüçāīū", min_size=1, max_size=14)
ANY_LETTERS = st.characters(
    categories=("Lu", "Ll", "Lo", "Mn", "Mc", "Nd"),
    exclude_characters="\u0345",  # a combining mark that folds to a Greek letter alone
)
ANY_WORD = st.text(alphabet=ANY_LETTERS, min_size=1, max_size=12)
SEPARATOR = st.sampled_from([" ", "  ", "-", ", ", "\t", " . "])


@st.composite
def names(draw, word=ANY_WORD):
    parts = draw(st.lists(word, min_size=1, max_size=4))
    out = parts[0]
    for part in parts[1:]:
        out += draw(SEPARATOR) + part
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names())
def test_any_name_finds_itself_by_each_word_and_prefix(name):
    """Every indexed word, and every prefix of it from two letters, finds the name; so does
    the whole name, in any order of its words."""
    found = name_search.words(name)
    for token, _ in found:
        for end in range(name_search.PREFIX_MIN, len(token) + 1):
            assert finds(token[:end], name), (token[:end], name)
    if any(len(token) >= name_search.PREFIX_MIN for token, _ in found):
        assert finds(name, name)
        assert finds(" ".join(reversed(name.split())), name)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(LATIN_WORD, min_size=1, max_size=4), data=st.data())
def test_latin_names_are_found_by_what_is_typed(parts, data):
    """A typed prefix of any word (two letters or more), in any case, with or without its
    accents, finds the name."""
    name = " ".join(parts)
    word = data.draw(st.sampled_from(parts))
    end = data.draw(st.integers(min_value=min(2, len(word)), max_value=len(word)))
    case = data.draw(st.sampled_from([str.lower, str.upper, str.title]))
    typed = case(word[:end])
    if len(typed) >= name_search.PREFIX_MIN:
        assert finds(typed, name), (typed, name)


# The index in the database --------------------------------------------------------------------


def _search(user, q: str):
    query = beneficiaries.search(user, beneficiaries.ListQuery(q=q))
    return db.session.scalars(query).all()


def _rows_of(person) -> set[int]:
    row = db.session.get(BeneficiaryNameIndex, person.id)
    return set(row.terms) if row else set()


def test_enrolment_and_edit_keep_the_index(make_user, make_beneficiary):
    admin = make_user()
    gita = make_beneficiary(name="Gita Magar", location="Bharatpur ward 4")
    make_beneficiary(name="Sita Thapa", location="Gorkha")
    assert _search(admin, "गीता") == [gita]
    assert _search(admin, "gita bharat") == [gita]
    assert _search(admin, "gita gorkha") == []
    beneficiaries.update(gita, {"name": "Gita Rai", "phone": gita.pii.phone, "location": "Gorkha"})
    assert _search(admin, "magar") == []
    assert _search(admin, "gita gorkha") == [gita]
    assert _rows_of(gita) == name_search.person_terms("Gita Rai", "Gorkha")


def test_search_keeps_to_the_projects_the_user_sees(make_user, make_project, make_beneficiary):
    agent = make_user("field agent")
    mine = make_project(members=[agent])
    other = make_project()
    seen = make_beneficiary(project=mine, name="Gita Magar")
    make_beneficiary(project=other, name="Gita Magar Two")
    assert _search(agent, "gita") == [seen]


def test_erasure_removes_the_index_rows(make_user, make_beneficiary):
    admin = make_user()
    person = make_beneficiary(name="Gita Magar")
    kept = make_beneficiary(name="Gita Rai")
    assert _rows_of(person)
    name_search.forget(person.id)
    assert _rows_of(person) == set()
    assert _search(admin, "gita") == [kept]
    # Deleting the person deletes the rows too (ON DELETE CASCADE, see the PostgreSQL test).


def test_rebuild_indexes_everyone_with_the_current_key(make_user, make_beneficiary, monkeypatch):
    admin = make_user()
    people = [make_beneficiary(name=n) for n in ("Gita Magar", "श्याम श्रेष्ठ", "José Rai")]
    expected = {p.id: _rows_of(p) for p in people}
    assert name_search.is_stale()  # never built: the rows came from enrolment only
    assert name_search.rebuild(chunk=2) == 3
    assert {p.id: _rows_of(p) for p in people} == expected
    assert not name_search.is_stale()
    state = db.session.get(NameIndexState, 1)
    assert state.people == 3 and name_search.SCHEME in state.fingerprint

    # New spelling rules or a new key: the stored hashes no longer answer, until the index
    # is built again.
    crypto._keys["names"] = bytes(32)
    assert name_search.is_stale()
    assert _search(admin, "shyam") == []
    name_search.rebuild()
    assert _search(admin, "shyam") == [people[1]]
    assert not name_search.is_stale()
    monkeypatch.setattr(name_search, "SCHEME", "words-v2")
    assert name_search.is_stale()


def test_the_index_stores_no_words(make_user, make_beneficiary):
    """Only 64-bit numbers and ids: no word, and the test of test_beneficiaries that dumps
    every table looks for the name in clear everywhere."""
    person = make_beneficiary(name="Zyxwanda Plaintextova", location="Gokarneshwor")
    rows = db.session.execute(select(BeneficiaryNameIndex)).scalars().all()
    assert [r.beneficiary_id for r in rows] == [person.id]
    assert all(isinstance(t, int) and -(2**63) <= t < 2**63 for t in rows[0].terms)


def test_rebuild_command(app, make_beneficiary):
    make_beneficiary(name="Gita Magar")
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["name-index", "--if-stale"])
    assert result.exit_code == 0, result.output
    assert "1 people" in result.output
    again = runner.invoke(args=["name-index", "--if-stale"])
    assert again.exit_code == 0 and again.output == ""

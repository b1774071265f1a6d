"""The one owner of amounts: what ``parse`` accepts and refuses, and that ``format`` round-trips.

Generated with Hypothesis on a fixed seed; CI=true runs more examples.
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.money import amounts
from tests.support.ci import ci_enabled

EXAMPLES = 2_000 if ci_enabled() else 300
generated = settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

DECIMALS = st.integers(min_value=0, max_value=18)
LOCALES = st.sampled_from(sorted(amounts.LOCALES))
SPACE = st.sampled_from(["", " ", "  ", "\t", "\u00a0", "\n"])
# Characters an amount is made of, and the ones people or attackers put next to them.
NEAR_NUMBERS = "0123456789०१२३४५६७८९,.,,..eE+-−_ ²٣০１" + "\u00a0\u2009"


def decimals_and_amount(allow_zero: bool = False):
    return DECIMALS.flatmap(
        lambda d: st.tuples(
            st.just(d),
            st.integers(min_value=0 if allow_zero else 1, max_value=amounts.ceiling(d)),
        )
    )


# --- round trips ---------------------------------------------------------------------------


@generated
@given(decimals_and_amount(), LOCALES, SPACE, SPACE)
def test_what_is_formatted_parses_back_in_every_locale(pair, locale, before, after):
    decimals, base = pair
    text = amounts.format(base, decimals, locale)
    assert amounts.parse(before + text + after, decimals) == base


@generated
@given(decimals_and_amount(allow_zero=True), LOCALES)
def test_zero_round_trips_where_zero_is_allowed(pair, locale):
    decimals, base = pair
    assert amounts.parse(amounts.format(base, decimals, locale), decimals, allow_zero=True) == base


@generated
@given(decimals_and_amount(), st.sampled_from(["en", "hi"]))
def test_formatted_text_with_devanagari_digits_or_without_commas_parses_too(pair, locale):
    decimals, base = pair
    text = amounts.format(base, decimals, locale)
    assert amounts.parse(text.replace(",", ""), decimals) == base
    devanagari = text.translate(str.maketrans("0123456789", amounts.DEVANAGARI_DIGITS))
    assert amounts.parse(devanagari, decimals) == base


@pytest.mark.parametrize("decimals", range(amounts.MAX_DECIMALS + 1))
def test_the_largest_amount_round_trips_and_one_more_is_refused(decimals):
    top = amounts.ceiling(decimals)
    for locale in amounts.LOCALES:
        assert len(amounts.format(top, decimals, locale)) <= 38
        assert amounts.parse(amounts.format(top, decimals, locale), decimals) == top
        with pytest.raises(amounts.AmountError, match="At most"):
            amounts.parse(amounts.format(top + 1, decimals, locale), decimals)


# --- nothing but a refusal, whatever the text ----------------------------------------------


def _grouping_is_valid(whole: str) -> bool:
    """An independent reading of the grouping rule, to hold ``parse`` against."""
    if "," not in whole:
        return True
    groups = whole.split(",")
    if not groups[0] or groups[0][0] == "0" or len(groups[-1]) != 3:
        return False
    middle = groups[1:-1]
    western = len(groups[0]) <= 3 and all(len(g) == 3 for g in middle)
    indian = len(groups[0]) <= 2 and all(len(g) == 2 for g in middle)
    return western or indian


def _oracle(text: str, decimals: int) -> int | None:
    """What the rules say ``text`` is worth, or None when it must be refused."""
    if len(text) > amounts.MAX_TEXT:
        return None
    text = text.strip()
    ascii_ = set(amounts.ASCII_DIGITS)
    deva = set(amounts.DEVANAGARI_DIGITS)
    chars = set(text)
    if not chars or not chars <= ascii_ | deva | {",", "."}:
        return None
    if (chars & ascii_ and chars & deva) or not chars & (ascii_ | deva):
        return None
    text = text.translate(str.maketrans(amounts.DEVANAGARI_DIGITS, "0123456789"))
    if text.count(".") > 1:
        return None
    whole, _, fraction = text.partition(".")
    if "," in fraction or not _grouping_is_valid(whole) or len(fraction) > decimals:
        return None
    value = int(whole.replace(",", "") or "0") * 10**decimals
    value += int(fraction.ljust(decimals, "0") or "0")
    if not 0 < value <= amounts.ceiling(decimals):
        return None
    return value


@generated
@given(st.text(), DECIMALS)
def test_any_text_is_an_amount_or_a_refusal(text, decimals):
    try:
        value = amounts.parse(text, decimals)
    except amounts.AmountError as exc:
        assert exc.message and exc.fields == {"amount": exc.message}
        assert _oracle(text, decimals) is None
    else:
        assert value == _oracle(text, decimals)


@generated
@given(st.text(alphabet=st.sampled_from(NEAR_NUMBERS), max_size=40), DECIMALS)
def test_near_numbers_are_read_exactly_as_the_rules_say(text, decimals):
    try:
        value = amounts.parse(text, decimals)
    except amounts.AmountError:
        assert _oracle(text, decimals) is None
    else:
        assert value == _oracle(text, decimals)


@generated
@given(
    st.from_regex(r"\A[0-9]{1,4}(,[0-9]{1,4}){0,4}(\.[0-9]{0,4})?\Z", fullmatch=True),
    DECIMALS,
)
def test_comma_placement_is_checked_as_the_rules_say(text, decimals):
    try:
        value = amounts.parse(text, decimals)
    except amounts.AmountError:
        assert _oracle(text, decimals) is None
    else:
        assert value == _oracle(text, decimals)


@generated
@given(
    st.integers(min_value=1, max_value=10**12),
    st.sampled_from(["e", "E"]),
    st.sampled_from(["", "-", "+"]),
    st.integers(min_value=0, max_value=10**12),
    DECIMALS,
)
def test_exponents_are_refused_in_any_spelling(mantissa, e, sign, exponent, decimals):
    with pytest.raises(amounts.AmountError, match="exponent"):
        amounts.parse(f"{mantissa}{e}{sign}{exponent}", decimals)


@generated
@given(st.integers(min_value=0, max_value=10**9), DECIMALS, st.sampled_from(["-", "−", "+"]))
def test_signs_are_refused(number, decimals, sign):
    with pytest.raises(amounts.AmountError, match="without a sign"):
        amounts.parse(f"{sign}{number}", decimals)


# --- known cases -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "decimals", "expected"),
    [
        ("1500", 2, 150_000),
        ("12.50", 2, 1_250),
        ("12.5", 2, 1_250),
        ("1,500", 2, 150_000),
        ("1,234,567.50", 2, 123_456_750),
        ("12,34,567.50", 2, 123_456_750),
        ("1,00,000", 0, 100_000),
        ("१२,३४,५६७.५०", 2, 123_456_750),
        ("१५००", 0, 1_500),
        ("  7  ", 0, 7),
        (".5", 1, 5),
        ("5.", 0, 5),
        ("0.000001", 6, 1),
        ("007", 0, 7),
    ],
)
def test_known_amounts(text, decimals, expected):
    assert amounts.parse(text, decimals) == expected


@pytest.mark.parametrize(
    ("text", "decimals", "says"),
    [
        ("1,5", 2, "comma is out of place"),
        ("12,50", 2, "comma is out of place"),
        ("1,,000", 2, "comma is out of place"),
        (",100", 2, "comma is out of place"),
        ("100,", 2, "comma is out of place"),
        ("0,500", 2, "comma is out of place"),
        ("1,2345", 2, "comma is out of place"),
        ("12,345,67", 2, "comma is out of place"),
        ("1.000,50", 2, "No commas after the decimal point"),
        ("1.2.3", 2, "one point"),
        ("1e-1000000000", 2, "exponent"),
        ("1e999999", 2, "exponent"),
        ("1E5", 2, "exponent"),
        ("-5", 2, "without a sign"),
        ("+5", 2, "without a sign"),
        ("0", 2, "more than zero"),
        ("0.00", 2, "more than zero"),
        ("००", 0, "more than zero"),
        ("", 2, "Enter an amount"),
        ("   ", 2, "Enter an amount"),
        (None, 2, "Enter an amount"),
        (".", 2, "Enter an amount"),
        ("NaN", 2, "Type only digits"),
        ("Infinity", 2, "Type only digits"),
        ("inf", 2, "Type only digits"),
        ("Rs 100", 2, "Type only digits"),
        ("12.505", 2, "At most 2 digits"),
        ("12.500", 2, "At most 2 digits"),  # no rounding, not even of zeros
        ("1.5", 0, "Whole numbers only"),
        ("1 000", 2, "no spaces"),
        ("1\u00a0000", 2, "no spaces"),
        ("²", 2, "digits 0-9 or ०-९"),
        ("১০০", 2, "digits 0-9 or ०-९"),  # Bengali
        ("١٠٠", 2, "digits 0-9 or ०-९"),  # Arabic-Indic
        ("１００", 2, "digits 0-9 or ०-९"),  # fullwidth
        ("1०0", 2, "one kind of digits"),
        ("1_000", 2, "Type only digits"),
        ("9" * 65, 2, "too long"),
        ("100000000001", 0, "At most 100,000,000,000"),
    ],
)
def test_refusals_say_what_to_type(text, decimals, says):
    with pytest.raises(amounts.AmountError) as refused:
        amounts.parse(text, decimals)
    assert says in refused.value.message


def test_huge_text_is_refused_before_any_work():
    started = time.perf_counter()
    for text in ("9" * 10**6, "1e" + "9" * 10**6, "1," * 10**6, " " * 10**6 + "1"):
        with pytest.raises(amounts.AmountError, match="too long"):
            amounts.parse(text, 18)
    assert time.perf_counter() - started < 1.0


def test_the_configured_maximum_applies(app):
    app.config["AMOUNT_MAX_UNITS"] = 1_000
    assert amounts.parse("1,000", 2) == 100_000
    with pytest.raises(amounts.AmountError, match=re.escape("At most 1,000.00")):
        amounts.parse("1,000.01", 2)


def test_no_bound_goes_past_a_bigint_column_or_a_uint256(app):
    app.config["AMOUNT_MAX_UNITS"] = 10**80
    assert amounts.ceiling(0) == amounts.COLUMN_MAX < amounts.UINT256_MAX
    with pytest.raises(amounts.AmountError, match="At most"):
        amounts.parse(str(amounts.COLUMN_MAX + 1), 0)
    assert amounts.parse(str(amounts.COLUMN_MAX), 0) == amounts.COLUMN_MAX


def test_allow_zero_is_explicit():
    assert amounts.parse("0", 2, allow_zero=True) == 0
    with pytest.raises(amounts.AmountError):
        amounts.parse("0", 2)


@pytest.mark.parametrize("decimals", [-1, 37, True, "2", 2.0])
def test_a_bad_decimals_is_a_programming_error(decimals):
    with pytest.raises((TypeError, ValueError)):
        amounts.parse("1", decimals)


# --- format, check ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "decimals", "locale", "text"),
    [
        (123_456_789, 2, "en", "1,234,567.89"),
        (123_456_789, 2, "hi", "12,34,567.89"),
        (123_456_789, 2, "ne", "१२,३४,५६७.८९"),
        (1_000, 0, "en", "1,000"),
        (1_000, 0, "hi", "1,000"),
        (100_000, 0, "hi", "1,00,000"),
        (5, 2, "en", "0.05"),
        (0, 0, "en", "0"),
        (0, 6, "ne", "०.००००००"),
        (None, 2, "en", "–"),
        (-150, 2, "en", "-1.50"),
    ],
)
def test_known_formats(base, decimals, locale, text):
    assert amounts.format(base, decimals, locale) == text


def test_the_amount_filter_is_the_module(app):
    from flask import render_template_string

    assert render_template_string("{{ 150050|amount(2) }}") == "1,500.50"
    assert render_template_string("{{ 150050|amount(2, 'ne') }}") == "१,५००.५०"
    app.config["AMOUNT_LOCALE"] = "hi"
    assert render_template_string("{{ 12345678|amount(0) }}") == "1,23,45,678"


def test_an_unknown_locale_is_refused_at_start_and_in_format(app):
    from config import TestConfig
    from portal import create_app

    with pytest.raises(ValueError, match="not 'fr'"):
        amounts.format(1, 2, "fr")
    with pytest.raises(RuntimeError, match="AMOUNT_LOCALE"):
        create_app(TestConfig, INSTANCE_DIR=app.config["INSTANCE_DIR"], AMOUNT_LOCALE="fr")


@pytest.mark.parametrize(
    ("base", "says"),
    [(0, "more than zero"), (-1, "without a sign"), (True, "Enter an amount"), ("5", "Enter")],
)
def test_check_refuses_what_parse_would(base, says):
    with pytest.raises(amounts.AmountError, match=says):
        amounts.check(base, 2)


def test_check_passes_what_parse_gives():
    assert amounts.check(amounts.parse("12.50", 2), 2) == 1_250
    with pytest.raises(amounts.AmountError, match="At most"):
        amounts.check(amounts.ceiling(2) + 1, 2)


# --- in the project's currency -------------------------------------------------------------


@generated
@given(decimals_and_amount(allow_zero=True), LOCALES, st.sampled_from(["NPR", "USD", "KES"]))
def test_money_names_the_currency_and_its_figure_parses_back(pair, locale, currency):
    decimals, base = pair
    text = amounts.money(base, decimals, currency, locale)
    name, _, figure = text.partition("\u00a0")
    assert name == currency
    assert amounts.parse(figure, decimals, allow_zero=True) == base


def test_money_without_a_currency_or_an_amount_is_the_plain_figure():
    assert amounts.money(150050, 2, None, "en") == "1,500.50"
    assert amounts.money(None, 2, "NPR", "en") == "–"

"""Matching statement lines to payouts, on generated statements: the outcome does not depend on
the order of the lines; duplicates and amounts off by one unit are exceptions, never matches."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.reconciliation.matching import Candidate, match
from portal.reconciliation.models import (
    AMOUNT_DIFFERS,
    DUPLICATE,
    MATCHED,
    NOT_PAID,
    UNEXPECTED,
)

payouts_st = st.dictionaries(
    st.uuids().map(str),
    st.integers(min_value=1, max_value=10**12),
    min_size=1,
    max_size=12,
).map(lambda d: {ref: Candidate(i + 1, amount, True) for i, (ref, amount) in enumerate(d.items())})


@st.composite
def statement(draw):
    """Payouts, and a statement built from them: each paid once, some twice, some off by one
    unit, some missing, some lines nobody sent; shuffled."""
    payouts = draw(payouts_st)
    lines = []
    expected_matched = set()
    for ref, payout in payouts.items():
        shape = draw(st.sampled_from(["once", "twice", "off", "missing", "off_then_right"]))
        if shape in ("once", "twice"):
            lines += [(ref, payout.amount, True)] * (1 if shape == "once" else 2)
            expected_matched.add(payout.id)
        elif shape == "off":
            lines.append((ref, payout.amount + draw(st.sampled_from([-1, 1])), True))
        elif shape == "off_then_right":
            lines += [(ref, payout.amount + 1, True), (ref, payout.amount, True)]
            expected_matched.add(payout.id)
    strangers = draw(st.lists(st.uuids().map(str), max_size=3))
    lines += [(ref, 100, True) for ref in strangers if ref not in payouts]
    return payouts, draw(st.permutations(lines)), expected_matched


@settings(max_examples=200, deadline=None)
@given(statement())
def test_every_payout_is_matched_at_most_once_whatever_the_order(case):
    payouts, lines, expected = case
    outcomes = match(lines, payouts)
    matched = [o.payout_id for o in outcomes if o.state == MATCHED]
    assert len(matched) == len(set(matched))  # never twice
    assert set(matched) == expected
    by_id = {p.id: p for p in payouts.values()}
    for (ref, amount, _), outcome in zip(lines, outcomes, strict=True):
        if outcome.state == MATCHED:
            assert (
                by_id[outcome.payout_id].amount == amount and payouts[ref].id == outcome.payout_id
            )
        if outcome.state == UNEXPECTED:
            assert ref not in payouts
        if outcome.state == AMOUNT_DIFFERS:
            assert payouts[ref].amount != amount


@settings(max_examples=100, deadline=None)
@given(statement(), st.randoms())
def test_reordering_the_statement_changes_no_count(case, rnd):
    payouts, lines, _ = case
    shuffled = list(lines)
    rnd.shuffle(shuffled)
    first = Counter(o.state for o in match(lines, payouts))
    second = Counter(o.state for o in match(shuffled, payouts))
    # A line off by one unit before or after the right one is an exception either way; a
    # second right line is a duplicate either way.
    assert first[MATCHED] == second[MATCHED]
    assert first[UNEXPECTED] == second[UNEXPECTED]
    assert first[DUPLICATE] + first[AMOUNT_DIFFERS] == second[DUPLICATE] + second[AMOUNT_DIFFERS]


def test_an_amount_off_by_one_unit_is_never_matched():
    payouts = {"a": Candidate(1, 1000, True)}
    assert [o.state for o in match([("a", 999, True), ("a", 1001, True)], payouts)] == [
        AMOUNT_DIFFERS,
        AMOUNT_DIFFERS,
    ]


def test_already_matched_payouts_and_unsent_ones():
    payouts = {"a": Candidate(1, 10, True), "b": Candidate(2, 10, False)}
    outcomes = match([("a", 10, True), ("b", 10, True), ("a", 10, False)], payouts, {1})
    assert [(o.state, o.payout_id) for o in outcomes] == [
        (DUPLICATE, 1),
        (UNEXPECTED, 2),
        (NOT_PAID, 1),
    ]

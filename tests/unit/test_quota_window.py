"""The sliding window's answer ("seconds until one more hit fits") for generated hits and rules,
against the definition: a rule of N per S seconds is full when N hits lie inside the last S
seconds, and then the oldest of the last N must leave the window first."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from portal.extensions import db
from portal.quotas import services as quotas
from portal.quotas.models import QuotaHit
from portal.timeutil import utcnow

RULES = st.lists(
    st.tuples(st.integers(0, 6), st.sampled_from([10, 60, 600, 3600])), min_size=1, max_size=3
)
AGES = st.lists(st.integers(0, 4000), max_size=14)  # seconds before now of each hit


def expected(ages: list[int], rules: list[tuple[int, int]]) -> int:
    longest = 0.0
    for amount, seconds in rules:
        inside = sorted(age for age in ages if age < seconds)  # youngest first
        if amount <= 0:
            longest = max(longest, float(seconds))
        elif len(inside) >= amount:
            longest = max(longest, float(seconds - inside[amount - 1]))
    return int(longest + 0.999) if longest > 0 else 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ages=AGES, rule_list=RULES, other=AGES)
def test_wait_matches_the_definition(app, ages, rule_list, other):
    db.session.execute(delete(QuotaHit))
    now = utcnow()
    for age in ages:
        db.session.add(QuotaHit(bucket="b", key="k", at=now - timedelta(seconds=age)))
    for age in other:  # another key's hits never count
        db.session.add(QuotaHit(bucket="b", key="other", at=now - timedelta(seconds=age)))
    db.session.flush()
    app.config["TEST_QUOTA_RULES"] = "; ".join(
        f"{amount} per {seconds} seconds" for amount, seconds in rule_list
    )
    got = quotas.wait("b", "k", "TEST_QUOTA_RULES")
    # The query runs a moment after ``now``: a hit may leave the window by then (one second).
    assert expected(ages, rule_list) - 1 <= got <= expected(ages, rule_list)
    db.session.rollback()

"""The sweeper's purge of limit counts on PostgreSQL: it never waits on a row a request holds.

A request counting a key deletes that key's old rows itself (``quotas.hit``) and goes on to lock
a payment's rows; a sweeper that waited on those quota rows while holding others closed a lock
cycle with it (a deadlock seen on the distribution-day bench). The purge skips held rows; the
next sweep takes them if they are still there.
"""

from __future__ import annotations

import secrets
import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, text

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_url(database_factory):
    return database_factory("portal_quota_purge")


@pytest.fixture(scope="module")
def app(race_app):
    with race_app(pool_size=4, BENEFICIARY_CODE_LIMITS="3 per 10 minutes") as app:
        yield app


def _hits(keys_and_ages: list[tuple[str, int]]) -> None:
    from portal.extensions import db
    from portal.quotas.models import QuotaHit
    from portal.redemptions.services import CODES_SENT
    from portal.timeutil import utcnow

    now = utcnow()
    for key, age in keys_and_ages:
        db.session.add(QuotaHit(bucket=CODES_SENT.bucket, key=key, at=now - timedelta(seconds=age)))
    db.session.commit()


def _left(keys: set[str]) -> int:
    from portal.extensions import db
    from portal.quotas.models import QuotaHit

    return db.session.scalar(select(func.count()).where(QuotaHit.key.in_(keys)))


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    held=st.integers(1, 4),
    free=st.integers(0, 6),
    fresh=st.integers(0, 3),
)
def test_the_purge_skips_what_a_request_holds_and_waits_for_nothing(app, held, free, fresh):
    from portal.extensions import db
    from portal.quotas import services as quotas
    from portal.quotas.models import QuotaHit
    from portal.redemptions.services import CODES_SENT

    tag = secrets.token_hex(4)
    busy, idle = f"busy-{tag}", f"idle-{tag}"
    stale_age = 11 * 60  # past the longest window (10 minutes)
    with app.app_context():
        _hits(
            [(busy, stale_age)] * held
            + [(idle, stale_age)] * free
            + [(busy, 5)] * fresh
            + [(idle, 5)] * fresh
        )
    holding, release = threading.Event(), threading.Event()

    def request_counting_busy():
        with app.app_context():
            quotas.hit(CODES_SENT, busy)  # deletes busy's old rows: held until its commit
            holding.set()
            release.wait(30)
            db.session.commit()

    counting = threading.Thread(target=request_counting_busy)
    counting.start()
    try:
        assert holding.wait(30)
        with app.app_context():
            # Waiting on a held row would fail here, not hang: the purge must not wait.
            db.session.execute(text("SET LOCAL lock_timeout = '2s'"))
            quotas.purge()
            db.session.commit()
            remaining = db.session.scalars(
                select(QuotaHit.key).where(QuotaHit.key.in_({busy, idle}))
            ).all()
            assert remaining.count(idle) == fresh  # every old row nobody held is gone
            assert remaining.count(busy) == held + fresh  # the held ones are skipped
    finally:
        release.set()
        counting.join(30)
    with app.app_context():
        quotas.purge()
        db.session.commit()
        # The request deleted its key's old rows and added one: nothing old is left anywhere.
        assert _left({busy}) == fresh + 1 and _left({idle}) == fresh
        db.session.execute(delete(QuotaHit).where(QuotaHit.key.in_({busy, idle})))
        db.session.commit()

"""The audit chain's head row never closes a lock cycle on PostgreSQL.

Every audited transaction ends on the one ``audit_head`` row. Taken where an entry was recorded
(in the middle of the work), it crossed with the rows the work locked: a transaction holding the
head waited for a row that another held while that one waited for the head, and PostgreSQL undid
one of them. The head is now locked at commit, after everything else, so transactions that lock
their own rows in one agreed order never deadlock whatever the points at which they audit.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from sqlalchemy import func, select

from portal.audit import services as audit
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.settings.models import Setting
from tests.support import pg_race

pytestmark = pytest.mark.integration

ROWS = [f"auditorder.{i}" for i in range(4)]
CROSSING = "auditorder.crossing"


@pytest.fixture(scope="module")
def app(race_app):
    with race_app(pool_size=8) as app:
        with app.app_context():
            for key in (*ROWS, CROSSING):
                db.session.merge(Setting(key=key, value="0"))
            db.session.commit()
        yield app


def _lock(key: str) -> Setting:
    return db.session.scalar(select(Setting).where(Setting.key == key).with_for_update())


def _entries(app) -> int:
    with app.app_context():
        try:
            return db.session.scalar(select(func.count()).select_from(AuditEntry))
        finally:
            db.session.remove()


def test_an_entry_recorded_before_a_row_lock_does_not_hold_the_head(app):
    """The crossing the distribution day met: A audits then waits for B's row; B holds the row,
    audits and commits. With the head taken at record time this was a deadlock."""
    recorded, locked = threading.Event(), threading.Event()
    before = _entries(app)

    def a() -> str:
        audit.record("test.order", "A audits first")
        recorded.set()
        assert locked.wait(20)
        _lock(CROSSING).value = "a"  # waits until B commits
        return "a"

    def b() -> str:
        assert recorded.wait(20)
        _lock(CROSSING).value = "b"
        locked.set()
        audit.record("test.order", "B audits while holding the row")
        time.sleep(0.3)  # A is now waiting for the row
        return "b"

    results = pg_race.race(
        2, lambda i, go: (go(), pg_race.in_own_session(app, (a, b)[i]))[1], what="a transaction"
    )
    assert results == ["a", "b"], results
    assert _entries(app) == before + 2
    with app.app_context():
        assert audit.verify().ok


@pytest.mark.parametrize("seed", range(6))
def test_audit_points_anywhere_in_ordered_work_never_deadlock(app, seed):
    """Generated interleavings: each transaction locks a random subset of rows in the agreed
    (sorted) order and records entries at random points between the locks."""
    rng = random.Random(seed)
    plans = []
    for _ in range(5):
        rows = sorted(rng.sample(ROWS, rng.randint(1, len(ROWS))))
        steps: list[str | None] = [*rows]
        for _ in range(rng.randint(1, 3)):
            steps.insert(rng.randint(0, len(steps)), None)  # None: record an entry here
        plans.append(steps)
    expected = sum(step is None for plan in plans for step in plan)
    before = _entries(app)

    def work(plan):
        def act() -> int:
            for step in plan:
                if step is None:
                    audit.record("test.order", "generated")
                else:
                    row = _lock(step)
                    row.value = str(int(row.value) + 1)
                time.sleep(rng.choice((0, 0.005, 0.02)))
            return len(plan)

        return act

    results = pg_race.race(
        len(plans),
        lambda i, go: (go(), pg_race.in_own_session(app, work(plans[i])))[1],
        seed=seed,
        what="a transaction",
    )
    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, failures
    assert _entries(app) == before + expected
    with app.app_context():
        assert audit.verify().ok

"""A request that PostgreSQL picks as a deadlock victim runs again instead of answering 500.

Two requests lock the same two rows in opposite orders, held apart by a barrier until each holds
its first row: PostgreSQL must break the cycle by undoing one of them. Both must answer 200, each
write must be kept exactly once, and the victim's view must have run twice.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.settings.models import Setting
from tests.support import pg_race

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app(race_app):
    with race_app(role="web", pool_size=6, WTF_CSRF_ENABLED=False) as app:
        yield app


def test_a_deadlock_victim_runs_its_view_again_and_both_requests_succeed(app):
    from flask import request

    met = threading.Barrier(2, timeout=20)
    runs: Counter[str] = Counter()

    def lock(key: str) -> Setting:
        return db.session.scalar(select(Setting).where(Setting.key == key).with_for_update())

    def view(first: str, second: str):
        runs[first] += 1
        a = lock(first)
        if runs[first] == 1:
            met.wait()  # both hold their first row: the second lock closes the cycle
        b = lock(second)
        a.value = str(int(a.value) + 1)
        b.value = str(int(b.value) + 1)
        return request.path

    app.add_url_rule("/_deadlock/<first>/<second>", "deadlock", view, methods=["POST"])
    with app.app_context():
        for key in ("deadlock.a", "deadlock.b"):
            db.session.merge(Setting(key=key, value="0"))
        db.session.commit()

    def contender(i: int, go) -> int:
        client = app.test_client()
        go()
        first, second = ("deadlock.a", "deadlock.b") if i == 0 else ("deadlock.b", "deadlock.a")
        return client.post(f"/_deadlock/{first}/{second}").status_code

    statuses = pg_race.race(2, contender, seed=1, what="a request")
    assert statuses == [200, 200]
    assert sorted(runs.values()) == [1, 2]  # one of them was undone and ran again
    with app.app_context():
        values = db.session.scalars(
            select(Setting.value).where(Setting.key.in_(["deadlock.a", "deadlock.b"]))
        ).all()
        assert values == ["2", "2"]  # each request's writes kept once

"""The dashboard on PostgreSQL and Redis: migration 0012's triggers equal a recount after any
writes and under concurrent ones; one snapshot per change shared by processes and readers."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import insert, text, update
from sqlalchemy.exc import OperationalError

from portal import realtime
from portal.dashboard import live, publisher, recount, shared, snapshot
from portal.disbursements.models import Entitlement
from portal.extensions import db
from portal.redemptions.models import Redemption
from portal.timeutil import utcnow
from tests.support import dashboard_machine

R = Redemption.__table__


@pytest.fixture(scope="module")
def pg_app(pg_url, app_factory):
    app = app_factory(pg_url)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def world(pg_app):
    made = dashboard_machine.make_world(db.session)
    db.session.commit()
    yield made
    with db.engine.begin() as conn:
        conn.execute(R.delete().where(R.c.project_id.in_(made["projects"])))
        conn.execute(
            Entitlement.__table__.delete().where(
                Entitlement.__table__.c.project_id.in_(made["projects"])
            )
        )


def test_the_migration_made_the_triggers(pg_app):
    names = db.session.scalars(
        text("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'dashboard_%' ORDER BY tgname")
    ).all()
    assert names == [
        "dashboard_entitlements_update",
        "dashboard_entitlements_write",
        "dashboard_redemptions_update",
        "dashboard_redemptions_write",
    ]
    db.session.rollback()


def test_totals_equal_a_recount_after_any_writes(pg_app, world):
    dashboard_machine.run(db.engine, world, max_examples=30)


def test_concurrent_settlements_and_rollbacks_keep_the_totals(pg_app, world):
    """Eight connections settling, rolling back and deleting payments of the same vendors and
    people at once: row locks order the upserts, and the served count moves exactly once."""
    project = world["projects"][0]
    at = utcnow()
    errors: list[BaseException] = []
    engine = db.engine

    def worker(n: int) -> None:
        try:
            for i in range(30):
                for attempt in range(5):
                    try:
                        with engine.begin() as conn:
                            rid = conn.execute(
                                insert(R)
                                .values(
                                    project_id=project,
                                    vendor_id=world["vendors"][(n + i) % 3],
                                    beneficiary_id=world["people"][i % 4],
                                    status="accepted",
                                    amount=100 + n,
                                    code_expires_at=at + timedelta(minutes=5),
                                    confirmed_at=at,
                                )
                                .returning(R.c.id)
                            ).scalar_one()
                            conn.execute(
                                update(R)
                                .where(R.c.id == rid)
                                .values(status="settled", settled_at=utcnow())
                            )
                            if i % 3 == 0:  # a rollback on chain: back to pending
                                conn.execute(
                                    update(R).where(R.c.id == rid).values(status="submitted")
                                )
                            if i % 7 == 0:
                                conn.execute(R.delete().where(R.c.id == rid))
                        break
                    except OperationalError as exc:  # a deadlock victim tries again
                        if "deadlock" not in str(exc) or attempt == 4:
                            raise
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with db.engine.connect() as conn:
        assert recount.check(conn, project) == []
        s = snapshot.build(conn, project)
    assert s["people"]["served"] == 4


def test_one_build_per_change_for_every_process_and_reader(pg_app, world, pg_url, app_factory):
    """Two apps (two processes' worth of publishers) committing bursts to one project: builds
    stay within one per MIN_GAP for both together, the last one covers the last commit, and
    page loads and subscribes read the stored snapshot without building."""
    other = app_factory(pg_url)
    project = world["projects"][0]
    person = world["people"][0]
    with db.engine.begin() as conn:
        conn.execute(
            insert(Entitlement.__table__).values(
                project_id=project, beneficiary_id=person, address="0x0", allocated=100_000
            )
        )
    sent: list[int] = []
    real_emit = realtime.emit

    def spy(event_name, data, rooms):
        if event_name == live.DASHBOARD_UPDATED and data["project_id"] == project:
            sent.append(100_000 - data["totals"]["remaining"])
        return real_emit(event_name, data, rooms)

    realtime.emit = spy
    try:
        started = time.monotonic()
        apps = [pg_app, other]
        for n in range(1, 61):  # 60 commits in ~1.5 s, alternating between the processes
            with apps[n % 2].app_context():
                row = db.session.get(Entitlement, _entitlement_id(project, person))
                row.redeemed = n
                db.session.commit()
                db.session.remove()
            time.sleep(0.025)
        deadline = time.monotonic() + 10
        while not (sent and sent[-1] == 60) and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
    finally:
        realtime.emit = real_emit
    builds = publisher.for_app(pg_app).builds + publisher.for_app(other).builds
    assert sent and sent[-1] == 60, sent
    # At most one build per MIN_GAP over both processes, plus one in flight at each end.
    assert builds <= elapsed / shared.MIN_GAP + 2, (builds, elapsed)
    assert builds == len(sent)

    built = []
    real_build = snapshot.build
    snapshot.build = lambda *a, **k: built.append(1) or real_build(*a, **k)
    try:
        for app in (pg_app, other):
            with app.app_context(), app.test_request_context():
                assert 100_000 - live.current(project)["totals"]["remaining"] == 60
    finally:
        snapshot.build = real_build
    assert built == [], "a page load built a snapshot though one was stored"


def _entitlement_id(project: int, person: int) -> int:
    from sqlalchemy import select

    return db.session.scalar(
        select(Entitlement.id).where(
            Entitlement.project_id == project, Entitlement.beneficiary_id == person
        )
    )

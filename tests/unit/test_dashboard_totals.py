"""The dashboard's running totals on SQLite: kept by the triggers ``db.create_all()`` attaches,
equal to a full recount after any sequence of writes, rebuilt by the migration for old rows."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_migrate import upgrade
from sqlalchemy import create_engine, insert, inspect, select, text, update

from config import TestConfig
from portal import create_app
from portal.dashboard import recount, snapshot
from portal.dashboard.models import vendor_totals
from portal.extensions import db
from portal.redemptions.models import Redemption
from portal.timeutil import utcnow
from tests.support import dashboard_machine

R = Redemption.__table__


def add(world, *, status, amount, vendor=0, person=0, settled_at=None, project=0):
    at = datetime(2026, 12, 3, 10, 0)
    return db.session.execute(
        insert(R)
        .values(
            project_id=world["projects"][project],
            vendor_id=world["vendors"][vendor],
            beneficiary_id=None if person is None else world["people"][person],
            status=status,
            amount=amount,
            code_expires_at=at + timedelta(minutes=5),
            created_at=at,
            confirmed_at=at,
            settled_at=settled_at,
        )
        .returning(R.c.id)
    ).scalar_one()


def test_totals_equal_a_recount_after_any_writes(app):
    world = dashboard_machine.make_world(db.session)
    db.session.commit()
    dashboard_machine.run(db.engine, world, max_examples=40)


def test_a_rollback_on_chain_moves_a_payment_back_to_pending(app):
    """Whatever code moves it (here a bare UPDATE), the screen follows the row's status."""
    world = dashboard_machine.make_world(db.session, projects=1)
    now = utcnow().replace(microsecond=0)
    settled = add(world, status="settled", amount=9900, settled_at=now)
    add(world, status="submitted", amount=100, person=1)
    db.session.commit()
    project = world["projects"][0]
    s = snapshot.build(db.session.connection(), project)
    assert (s["totals"]["redeemed"], s["pending"]) == (9900, {"count": 1, "amount": 100})
    assert s["people"]["served"] == 1 and sum(s["chart"]["amounts"]) == 9900

    db.session.execute(update(R).where(R.c.id == settled).values(status="submitted"))
    db.session.commit()
    s = snapshot.build(db.session.connection(), project)
    assert (s["totals"]["redeemed"], s["pending"]) == (0, {"count": 2, "amount": 10000})
    assert s["people"]["served"] == 0 and sum(s["chart"]["amounts"]) == 0
    assert s["chart"]["base"] == 0
    assert recount.check(db.session.connection()) == []


def test_check_names_a_drifted_total_and_repair_fixes_it(app):
    world = dashboard_machine.make_world(db.session, projects=1)
    add(world, status="settled", amount=500)
    db.session.commit()
    conn = db.session.connection()
    assert recount.check(conn) == []
    conn.execute(update(vendor_totals).values(amount=vendor_totals.c.amount + 1))
    problems = recount.check(conn)
    assert len(problems) == 1 and "dashboard_vendor_totals" in problems[0]
    recount.repair(conn)
    assert recount.check(conn) == []
    db.session.commit()


def _add_later_columns(engine) -> list[tuple[str, str]]:
    """Add to the existing tables the plain columns of today's models that they lack."""
    added = []
    with engine.begin() as conn:
        have = inspect(conn)
        tables = set(have.get_table_names())
        for table in db.metadata.sorted_tables:
            if table.name not in tables:
                continue
            present = {c["name"] for c in have.get_columns(table.name)}
            for column in table.columns:
                if column.name in present or column.primary_key or column.unique:
                    continue
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
                added.append((table.name, column.name))
    return added


def _drop_columns(engine, columns: list[tuple[str, str]]) -> None:
    with engine.begin() as conn:
        for table, column in columns:
            conn.execute(text(f'ALTER TABLE "{table}" DROP COLUMN "{column}"'))


def test_the_migration_counts_existing_redemptions(tmp_path):
    """Rows written before migration 0012 are in its totals, and later ones by its triggers."""
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url, INSTANCE_DIR=str(tmp_path))
    with app.app_context():
        upgrade(revision="0009")
        # The models are today's: columns later migrations add are there for these inserts
        # only, and gone again before those migrations run.
        later = _add_later_columns(db.engine)
        world = dashboard_machine.make_world(db.session, projects=1)
        add(world, status="settled", amount=700, settled_at=datetime(2026, 12, 3, 10, 1))
        add(world, status="accepted", amount=300, person=1)
        db.session.commit()
        db.session.remove()
        _drop_columns(db.engine, later)
        upgrade()
        engine = create_engine(url)
        with engine.begin() as conn:
            assert recount.check(conn) == []
            names = conn.scalars(text("select name from sqlite_master where type='trigger'"))
            assert {n for n in names if n.startswith("dashboard_")} == {
                f"dashboard_{t}_{op}"
                for t in ("redemptions", "entitlements")
                for op in ("insert", "update", "delete")
            }
            held = conn.execute(
                select(vendor_totals.c.status, vendor_totals.c.amount).order_by("status")
            ).all()
            assert held == [("accepted", 300), ("settled", 700)]
            conn.execute(update(R).values(status="settled"))
            assert recount.check(conn) == []
        engine.dispose()
        db.engine.dispose()


def test_the_check_and_repair_commands(app):
    world = dashboard_machine.make_world(db.session, projects=1)
    add(world, status="settled", amount=500)
    db.session.commit()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["dashboard", "check"]).exit_code == 0
    db.session.execute(update(vendor_totals).values(count=7))
    db.session.commit()
    failed = runner.invoke(args=["dashboard", "check"])
    assert failed.exit_code == 1 and "1 difference(s)" in failed.output
    assert runner.invoke(args=["dashboard", "repair"]).exit_code == 0
    assert runner.invoke(args=["dashboard", "check"]).exit_code == 0

"""A Hypothesis state machine writing redemptions and entitlements the way any code might (one
row or many per statement, status forward and back, amounts and times changed, rows deleted)
and checking after every step that the dashboard's running totals equal a full recount.

Used on SQLite (``db.create_all()`` triggers) and on PostgreSQL (migration 0012's triggers).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine

from portal.beneficiaries.models import Beneficiary
from portal.dashboard import recount, snapshot
from portal.disbursements.models import Entitlement
from portal.projects.models import Project
from portal.redemptions.models import ACCEPTED, SETTLED, STATUSES, SUBMITTED, Redemption
from portal.vendors.models import Vendor

R = Redemption.__table__
E = Entitlement.__table__
_names = itertools.count(1)

BASE = datetime(2026, 12, 3, 10, 0)
# A handful of instants a few seconds and minutes apart: several land in one minute bucket.
TIMES = st.builds(
    lambda minute, second: BASE + timedelta(minutes=minute, seconds=second),
    st.integers(0, 4),
    st.sampled_from([0, 1, 30, 59]),
)
MAYBE_TIME = st.none() | TIMES
AMOUNTS = st.integers(0, 10_000)
# Every status, with the ones that move money drawn more often.
ANY_STATUS = st.sampled_from(STATUSES) | st.sampled_from((SETTLED, SUBMITTED, ACCEPTED))


def make_world(session, projects: int = 2, vendors: int = 3, people: int = 4) -> dict:
    """Projects, vendors and people for the rows to point at (the foreign keys hold)."""
    n = next(_names)
    made = {
        "projects": [Project(name=f"Totals {n}-{i}", type="cva") for i in range(projects)],
        "vendors": [
            Vendor(
                name=f"Shop {n}-{i}",
                contact_name="Owner",
                phone=f"+97798000{n:03d}{i:02d}",
                phone_index=f"totals-{n}-{i}",
            )
            for i in range(vendors)
        ],
        "people": [Beneficiary(ref=f"T{n:05d}{i:03d}") for i in range(people)],
    }
    for rows in made.values():
        session.add_all(rows)
    session.flush()
    return {key: [row.id for row in rows] for key, rows in made.items()}


def run(engine: Engine, world: dict, max_examples: int = 60) -> None:
    """Run the machine against ``engine``; each example removes its rows at the end (through
    the delete triggers, so the totals must come back to zero too)."""

    class Totals(RuleBasedStateMachine):
        redemptions = Bundle("redemptions")

        def __init__(self):
            super().__init__()
            self.conn = engine.connect()
            self.ids: set[int] = set()
            # Per project: the totals and the change count last seen.
            self.seen: dict[int, tuple[dict, int]] = {}

        def teardown(self):
            try:
                self.conn.rollback()
                self.conn.execute(delete(R).where(R.c.project_id.in_(world["projects"])))
                self.conn.execute(delete(E).where(E.c.project_id.in_(world["projects"])))
                self.conn.commit()
                left = recount.check(self.conn)
            finally:
                # The next example starts from clean totals, whatever this one left.
                recount.repair(self.conn)
                self.conn.commit()
                self.conn.close()
            assert left == [], left

        @rule(
            target=redemptions,
            project=st.sampled_from(world["projects"]),
            vendor=st.sampled_from(world["vendors"]),
            person=st.none() | st.sampled_from(world["people"]),
            status=ANY_STATUS,
            amount=AMOUNTS,
            created=TIMES,
            confirmed=MAYBE_TIME,
            settled=MAYBE_TIME,
        )
        def insert(self, project, vendor, person, status, amount, created, confirmed, settled):
            rid = self.conn.execute(
                insert(R)
                .values(
                    project_id=project,
                    vendor_id=vendor,
                    beneficiary_id=person,
                    status=status,
                    amount=amount,
                    code_expires_at=created + timedelta(minutes=5),
                    created_at=created,
                    confirmed_at=confirmed,
                    settled_at=settled,
                )
                .returning(R.c.id)
            ).scalar_one()
            self.ids.add(rid)
            return rid

        @rule(rid=redemptions, status=ANY_STATUS, settled=MAYBE_TIME)
        def change_status(self, rid, status, settled):
            """Forward, sideways, or back, with or without a settlement time."""
            self.conn.execute(
                update(R).where(R.c.id == rid).values(status=status, settled_at=settled)
            )

        @rule(rid=redemptions, at=TIMES)
        def settle(self, rid, at):
            self.conn.execute(update(R).where(R.c.id == rid).values(status=SETTLED, settled_at=at))

        @rule(rid=redemptions, back_to=st.sampled_from((SUBMITTED, ACCEPTED)), clear=st.booleans())
        def roll_back(self, rid, back_to, clear):
            """A chain rollback: confirmed → pending, its settlement time kept or cleared."""
            values = {"status": back_to, **({"settled_at": None} if clear else {})}
            self.conn.execute(update(R).where(R.c.id == rid, R.c.status == SETTLED).values(values))

        @rule(rid=redemptions, at=MAYBE_TIME)
        def move_settlement(self, rid, at):
            """Only the settlement time changes (a re-check finding another block)."""
            self.conn.execute(update(R).where(R.c.id == rid).values(settled_at=at))

        @rule(
            project=st.sampled_from(world["projects"]),
            old=ANY_STATUS,
            new=ANY_STATUS,
        )
        def change_many(self, project, old, new):
            """One statement moving many rows: a rollback putting a block's payments back."""
            self.conn.execute(
                update(R)
                .where(R.c.project_id == project, R.c.status == old, R.c.id.in_(self.ids or {0}))
                .values(status=new)
            )

        @rule(rid=redemptions, amount=AMOUNTS, vendor=st.sampled_from(world["vendors"]))
        def change_amount_or_vendor(self, rid, amount, vendor):
            self.conn.execute(
                update(R).where(R.c.id == rid).values(amount=amount, vendor_id=vendor)
            )

        @rule(
            rid=redemptions,
            confirmed=MAYBE_TIME,
            person=st.none() | st.sampled_from(world["people"]),
        )
        def change_time_or_person(self, rid, confirmed, person):
            self.conn.execute(
                update(R).where(R.c.id == rid).values(confirmed_at=confirmed, beneficiary_id=person)
            )

        @rule(rid=redemptions)
        def touch_unwatched(self, rid):
            """A column the totals ignore: the trigger must not move anything."""
            self.conn.execute(update(R).where(R.c.id == rid).values(tries=R.c.tries + 1))

        @rule(rid=consumes(redemptions))
        def remove(self, rid):
            self.conn.execute(delete(R).where(R.c.id == rid))
            self.ids.discard(rid)

        @rule(
            project=st.sampled_from(world["projects"]),
            person=st.sampled_from(world["people"]),
            allocated=AMOUNTS,
            redeemed=AMOUNTS,
            revoked=AMOUNTS,
        )
        def entitlement(self, project, person, allocated, redeemed, revoked):
            where = (E.c.project_id == project, E.c.beneficiary_id == person)
            values = {"allocated": allocated, "redeemed": redeemed, "revoked": revoked}
            if self.conn.scalar(select(func.count()).select_from(E).where(*where)):
                self.conn.execute(update(E).where(*where).values(**values))
            else:
                self.conn.execute(
                    insert(E).values(
                        project_id=project, beneficiary_id=person, address="0x0", **values
                    )
                )

        @rule(project=st.sampled_from(world["projects"]), person=st.sampled_from(world["people"]))
        def drop_entitlement(self, project, person):
            self.conn.execute(
                delete(E).where(E.c.project_id == project, E.c.beneficiary_id == person)
            )

        @rule(keep=st.booleans())
        def end_transaction(self, keep):
            """Commit, or roll back: a rolled-back write must leave the totals as they were."""
            if keep:
                self.conn.commit()
            else:
                self.conn.rollback()
                self.seen.clear()  # the counts fall back with the totals they counted
                self.ids = set(self.conn.scalars(select(R.c.id).where(R.c.id.in_(self.ids or {0}))))
                self.conn.commit()

        @invariant()
        def totals_equal_a_recount(self):
            assert recount.check(self.conn) == []

        @invariant()
        def a_change_of_totals_moves_the_change_count(self):
            """What tells a page load its stored snapshot is stale (``snapshot.changes``):
            whatever moved a project's totals moved its count, and only a rollback lowers it."""
            for project in world["projects"]:
                totals = recount.kept(self.conn, project)
                count = snapshot.changes(self.conn, project)
                if project in self.seen:
                    before, counted = self.seen[project]
                    assert count >= counted
                    if totals != before:
                        assert count > counted, (before, totals)
                self.seen[project] = (totals, count)

    run_state_machine_as_test(
        Totals,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )

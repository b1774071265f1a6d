"""The ledger and the money trail on PostgreSQL.

1. Reserve, release and credit on one entitlement from many connections at once (threads
   released together): the row never goes below zero and never counts an amount twice.
2. The redemptions list at 100,000 rows: every filter is an index range scan (EXPLAIN, no
   sequential scan of ``redemptions``), a page answers in milliseconds, and the export holds
   exactly the filtered set.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import secrets
import time
from datetime import date, datetime

import pytest
from sqlalchemy import select, text

from tests.support import pg_race

pytestmark = pytest.mark.integration

THREADS = 10
ROWS = 100_000
VENDORS = 20
PEOPLE = 200
START = datetime(2026, 1, 1)
# Distinct valid Nepali mobile numbers for everyone this module enrols.
NUMBERS = itertools.count(1)


def _phone(prefix: str = "984") -> str:
    return f"{prefix}{1_000_000 + next(NUMBERS):07d}"


@pytest.fixture(scope="module")
def app(race_app):
    with race_app(pool_size=THREADS + 4, WTF_CSRF_ENABLED=False) as app:
        yield app


def _person(app):
    """A project with one entitled person (10,000 base units), committed; their ids."""
    from portal.accounts import services as accounts
    from portal.beneficiaries import services as beneficiaries
    from portal.extensions import db
    from portal.ledger import entitlements as ledger
    from portal.projects import services as projects

    with app.app_context():
        roles = accounts.seed_roles()
        user = accounts.create_user(
            f"ledger-{secrets.token_hex(4)}@example.org", "L", "a-long-password-1", roles["admin"]
        )
        project = projects.create({"name": f"L {secrets.token_hex(3)}", "type": "cva"}, user)
        person = beneficiaries.create({"name": "P", "phone": _phone()}, project=project)
        ledger.credit(project.id, [(person.id, "0x" + "ef" * 20, 10_000)])
        db.session.commit()
        return project.id, person.id


def _row(app, project_id, person_id):
    from portal.disbursements.models import Entitlement
    from portal.extensions import db

    with app.app_context():
        row = db.session.scalar(
            select(Entitlement).where(
                Entitlement.project_id == project_id, Entitlement.beneficiary_id == person_id
            )
        )
        return row.allocated, row.redeemed, row.revoked


def _each_in_own_session(app, operation):
    """``operation(i)`` in THREADS threads, each its own app context and session, committed."""
    from portal.extensions import db

    def contender(i, go):
        with app.app_context():
            db.session.execute(text("SELECT 1"))  # the connection is taken before the start
            go()
            result = operation(i)
            db.session.commit()
            return result

    return pg_race.race(THREADS, contender, seed=7, what="a ledger call")


@pytest.mark.parametrize("amount", [3_000, 1_000, 10_001])
def test_concurrent_reserves_take_only_what_is_there(app, amount):
    from portal.ledger import entitlements as ledger

    project_id, person_id = _person(app)
    results = _each_in_own_session(app, lambda i: ledger.reserve(project_id, person_id, amount))
    assert all(isinstance(r, bool) for r in results), results
    assert sum(results) == min(THREADS, 10_000 // amount)
    allocated, redeemed, _ = _row(app, project_id, person_id)
    assert redeemed == sum(results) * amount and allocated - redeemed >= 0


def test_concurrent_releases_never_give_back_more_than_was_reserved(app):
    from portal.extensions import db
    from portal.ledger import entitlements as ledger

    project_id, person_id = _person(app)
    with app.app_context():
        assert ledger.reserve(project_id, person_id, 9_000)
        db.session.commit()
    results = _each_in_own_session(app, lambda i: ledger.release(project_id, person_id, 3_000))
    assert sum(results) == 3
    assert _row(app, project_id, person_id)[1] == 0


def test_reserve_release_and_credit_mixed_add_up(app):
    """Each thread reserves, releases half of its successes and credits; the row must equal the
    sum of what each call reported having done."""
    from portal.ledger import entitlements as ledger

    project_id, person_id = _person(app)

    def mixed(i):
        rng = random.Random(i)
        reserved = released = credited = 0
        for _ in range(20):
            amount = rng.randint(100, 1_500)
            choice = rng.random()
            if choice < 0.55 and ledger.reserve(project_id, person_id, amount):
                reserved += amount
            elif choice < 0.85 and ledger.release(project_id, person_id, amount):
                released += amount
            elif choice >= 0.85:
                ledger.credit(project_id, [(person_id, "0x" + "ef" * 20, amount)])
                credited += amount
        return reserved, released, credited

    results = _each_in_own_session(app, mixed)
    reserved = sum(r[0] for r in results)
    released = sum(r[1] for r in results)
    credited = sum(r[2] for r in results)
    allocated, redeemed, _ = _row(app, project_id, person_id)
    assert allocated == 10_000 + credited
    assert redeemed == reserved - released
    assert redeemed >= 0 and allocated - redeemed >= 0


# --- the list at 100,000 rows -----------------------------------------------------------------


@pytest.fixture(scope="module")
def big(app):
    """A project with VENDORS vendors, PEOPLE people and ROWS redemptions over 200 days,
    written with one INSERT ... SELECT; plus a small second project."""
    from portal.accounts import services as accounts
    from portal.beneficiaries import services as beneficiaries
    from portal.extensions import db
    from portal.projects import services as projects
    from portal.vendors import services as vendors

    with app.app_context():
        roles = accounts.seed_roles()
        admin = accounts.create_user(
            f"big-{secrets.token_hex(4)}@example.org", "B", "a-long-password-1", roles["admin"]
        )
        project = projects.create({"name": "Big", "type": "cva"}, admin)
        other = projects.create({"name": "Small", "type": "cva"}, admin)
        vendor_ids = [
            vendors.register(
                {
                    "name": f"Shop {n}",
                    "phone": _phone("980"),
                    "category": "shop",
                    "contact_name": "Owner",
                },
                project=project,
            ).id
            for n in range(VENDORS)
        ]
        people = [
            beneficiaries.create(
                {"name": f"P {n}", "phone": _phone()},
                project=project,
            ).id
            for n in range(PEOPLE)
        ]
        db.session.commit()
        db.session.execute(
            text(
                """
                INSERT INTO redemptions (project_id, vendor_id, beneficiary_id, amount, method,
                    status, code_expires_at, tries, resends, last_sent_at, created_at,
                    settled_at, updated_at)
                SELECT CASE WHEN g % 50 = 0 THEN :other ELSE :project END,
                       (:vendors)[1 + g % :nv], (:people)[1 + (g * 7) % :np],
                       100 + g % 900, 'card',
                       CASE WHEN g % 10 = 0 THEN 'failed' WHEN g % 10 = 1 THEN 'submitted'
                            ELSE 'settled' END,
                       :start + make_interval(secs => g * 172.8) + interval '5 minutes', 0, 0,
                       :start, :start + make_interval(secs => g * 172.8),
                       CASE WHEN g % 10 > 1 THEN :start + make_interval(secs => g * 172.8 + 30)
                       END,
                       :start
                FROM generate_series(1, :rows) AS g
                """
            ),
            {
                "project": project.id,
                "other": other.id,
                "vendors": vendor_ids,
                "people": people,
                "nv": VENDORS,
                "np": PEOPLE,
                "start": START,
                "rows": ROWS,
            },
        )
        # Someone who paid three times, long ago: found through their own index, not by
        # walking the project's 100,000 rows back from the newest.
        rare = beneficiaries.create({"name": "Rare", "phone": _phone()}, project=project)
        db.session.execute(
            text(
                """
                INSERT INTO redemptions (project_id, vendor_id, beneficiary_id, amount, method,
                    status, code_expires_at, tries, resends, last_sent_at, created_at, updated_at)
                SELECT :project, :vendor, :person, 500, 'card', 'settled', :at, 0, 0, :at,
                       :at - make_interval(days => g), :at
                FROM generate_series(1, 3) AS g
                """
            ),
            {"project": project.id, "vendor": vendor_ids[0], "person": rare.id, "at": START},
        )
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE redemptions"))
        ref = db.session.scalar(
            text("SELECT ref FROM beneficiaries WHERE id = :id"), {"id": people[3]}
        )
        yield {
            "project": project.id,
            "other": other.id,
            "vendor": vendor_ids[5],
            "ref": ref,
            "rare": rare.ref,
            "admin": admin.email,
        }


def _filters(big, **values):
    from portal.ledger.redemption_list import Filters

    return Filters(project_id=big["project"], **values)


CASES = {
    "none": {},
    "status": {"status": "submitted"},
    "vendor": {"vendor_id": "vendor"},
    "beneficiary": {"beneficiary": "ref"},
    "rare beneficiary": {"beneficiary": "rare"},
    "dates": {"start": date(2026, 4, 1), "end": date(2026, 4, 30)},
    "old dates and status": {
        "start": date(2026, 1, 2),
        "end": date(2026, 1, 3),
        "status": "failed",
    },
    "vendor and dates": {"vendor_id": "vendor", "start": date(2026, 6, 1)},
}


def _resolve(big, case):
    values = dict(case)
    if "vendor_id" in values:
        values["vendor_id"] = big["vendor"]
    if "beneficiary" in values:
        values["beneficiary"] = big[values["beneficiary"]]
    return values


def _plan(statement) -> dict:
    from portal.extensions import db

    compiled = statement.compile(dialect=db.engine.dialect)
    with db.engine.connect() as conn:
        row = conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + str(compiled), compiled.params
        ).scalar()
    return row[0] if isinstance(row, list) else json.loads(row)[0]


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


@pytest.mark.parametrize("case", list(CASES))
def test_every_filter_is_an_index_scan_and_fast_at_100k(app, big, case):
    from portal.ledger import redemption_list

    with app.app_context():
        filters = _filters(big, **_resolve(big, CASES[case]))
        statement = redemption_list.query(filters).limit(redemption_list.PER_PAGE + 1)
        plan = _plan(statement)
        scans = [n for n in _nodes(plan["Plan"]) if n.get("Relation Name") == "redemptions"]
        assert scans and all(n["Node Type"] != "Seq Scan" for n in scans), scans
        assert plan["Execution Time"] < 50, plan["Execution Time"]
        started = time.perf_counter()
        page = redemption_list.page(filters)
        elapsed = time.perf_counter() - started
        assert elapsed < 0.5, elapsed
        index = sorted({n.get("Index Name") for n in scans if n.get("Index Name")})
        if case == "rare beneficiary":
            assert index == ["ix_redemptions_beneficiary_created"], index
        # Shown with ``-s``: the figures the README quotes.
        print(
            f"\n{case}: query {plan['Execution Time']:.2f} ms via {index},"
            f" page {elapsed * 1000:.1f} ms"
        )
        assert page.rows
        for redemption, _ in page.rows:
            assert redemption.project_id == big["project"]


def test_a_deep_page_is_as_fast_as_the_first(app, big):
    from portal.ledger import redemption_list

    with app.app_context():
        filters = _filters(big)
        page = redemption_list.page(filters)
        for _ in range(30):
            page = redemption_list.page(filters, after=page.next["after"])
        started = time.perf_counter()
        redemption_list.page(filters, after=page.next["after"])
        assert time.perf_counter() - started < 0.5
        assert page.at_least and page.total == redemption_list.COUNT_LIMIT


def test_export_holds_exactly_the_filtered_set(app, big):
    from portal.extensions import db
    from portal.ledger import redemption_list

    client = app.test_client()
    assert (
        client.post(
            "/login", data={"email": big["admin"], "password": "a-long-password-1"}
        ).status_code
        == 302
    )
    values = {"vendor": big["vendor"], "from": "2026-03-01", "to": "2026-05-31"}
    reply = client.post(f"/projects/{big['project']}/redemptions/export.csv", data=values)
    assert reply.status_code == 200
    rows = list(csv.DictReader(io.StringIO(reply.get_data().decode("utf-8")[1:])))
    with app.app_context():
        filters = _filters(
            big, vendor_id=big["vendor"], start=date(2026, 3, 1), end=date(2026, 5, 31)
        )
        expected = db.session.scalars(
            redemption_list.query(filters).with_only_columns(redemption_list.Redemption.id)
        ).all()
    assert len(rows) == len(expected) > 100
    assert [int(r["Payment"]) for r in rows] == list(expected)
    assert {r["Vendor"] for r in rows} == {"Shop 5"}
    assert all("2026-03-01" <= r["Date (UTC)"][:10] <= "2026-05-31" for r in rows)


def test_a_payment_failed_by_many_at_once_is_given_back_once(app):
    """The chain's answer and a vendor's suspension can fail the same payment at the same moment:
    the status move lets one of them release the reservation, whatever the interleaving."""
    from portal.extensions import db
    from portal.ledger import entitlements as ledger
    from portal.redemptions import transfer
    from portal.redemptions.models import SUBMITTED, Redemption
    from portal.timeutil import utcnow
    from portal.vendors import services as vendors

    project_id, person_id = _person(app)
    with app.app_context():
        vendor = vendors.register(
            {"name": "V", "phone": _phone("980"), "category": "shop", "contact_name": "O"}
        )
        assert ledger.reserve(project_id, person_id, 4_000)
        # Other payments' reservations: a second give-back would eat into them.
        assert ledger.reserve(project_id, person_id, 6_000)
        payment = Redemption(
            project_id=project_id,
            vendor_id=vendor.id,
            beneficiary_id=person_id,
            amount=4_000,
            status=SUBMITTED,
            code_expires_at=utcnow(),
        )
        db.session.add(payment)
        db.session.commit()
        payment_id = payment.id
    results = _each_in_own_session(app, lambda i: transfer.fail(payment_id, f"failed {i}"))
    assert sum(results) == 1
    assert _row(app, project_id, person_id)[1] == 6_000

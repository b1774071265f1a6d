"""The dashboard's running totals recounted from the rows: to check them, and to rebuild them.

``check`` compares what the triggers kept with a full recount (the cost the dashboard no longer
pays on every change: run it by hand, ``flask dashboard check``, or from tests). ``repair``
replaces the totals with the recount: the migration's backfill, and the fix if a trigger was
ever missing (a table rebuilt by a later migration on SQLite).
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Integer, case, delete, func, insert, literal_column, select
from sqlalchemy.engine import Connection

from portal.dashboard.models import (
    MINUTE_SHARDS,
    SHARDS,
    minute_totals,
    people_served,
    people_totals,
    vendor_totals,
)
from portal.disbursements.models import Entitlement
from portal.redemptions.models import SETTLED, Redemption

R = Redemption.__table__.c
E = Entitlement.__table__.c
# Constants spelled in the SQL text: a grouped expression must read the same in SELECT and
# GROUP BY, and bound parameters would differ.
SIXTY = literal_column("60")
SHARD_COUNT = literal_column(str(SHARDS))
MINUTE_SHARD_COUNT = literal_column(str(MINUTE_SHARDS))


def _minute(conn: Connection):
    at = func.coalesce(R.settled_at, R.confirmed_at, R.created_at)
    if conn.dialect.name == "postgresql":
        return func.floor(func.extract("epoch", at) / SIXTY)
    return func.strftime(literal_column("'%s'"), at).cast(Integer) // SIXTY


def _where(table_project, project_id: int | None):
    return [] if project_id is None else [table_project == project_id]


def expected(conn: Connection, project_id: int | None = None) -> dict[str, dict[tuple, tuple]]:
    """Every total row the triggers should hold, recounted: {table: {key: values}}."""
    found: dict[str, dict[tuple, tuple]] = {}
    rows = conn.execute(
        select(R.project_id, R.vendor_id, R.status, func.count(), func.sum(R.amount))
        .where(*_where(R.project_id, project_id))
        .group_by(R.project_id, R.vendor_id, R.status)
    )
    found[vendor_totals.name] = {(p, v, s): (n, int(a)) for p, v, s, n, a in rows}

    minute = _minute(conn)
    settled = [R.status == SETTLED, *_where(R.project_id, project_id)]
    rows = conn.execute(
        select(
            R.project_id, minute, R.vendor_id % MINUTE_SHARD_COUNT, func.count(), func.sum(R.amount)
        )
        .where(*settled)
        .group_by(R.project_id, minute, R.vendor_id % MINUTE_SHARD_COUNT)
    )
    found[minute_totals.name] = {(p, int(m), s): (n, int(a)) for p, m, s, n, a in rows}

    rows = conn.execute(
        select(R.project_id, R.beneficiary_id, func.count())
        .where(*settled, R.beneficiary_id.is_not(None))
        .group_by(R.project_id, R.beneficiary_id)
    )
    served_each = {(p, b): (n,) for p, b, n in rows}
    found[people_served.name] = served_each

    people: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    rows = conn.execute(
        select(
            E.project_id,
            E.beneficiary_id % SHARD_COUNT,
            func.sum(E.allocated),
            func.sum(E.redeemed),
            func.sum(E.revoked),
            func.count(case((E.allocated > 0, 1))),
        )
        .where(*_where(E.project_id, project_id))
        .group_by(E.project_id, E.beneficiary_id % SHARD_COUNT)
    )
    for p, shard, allocated, redeemed, revoked, count in rows:
        people[(p, shard)][:4] = [int(allocated), int(redeemed), int(revoked), count]
    for p, b in served_each:
        people[(p, b % SHARDS)][4] += 1
    found[people_totals.name] = {k: tuple(v) for k, v in people.items() if any(v)}
    return found


_SHAPES = {
    vendor_totals.name: (vendor_totals, ("project_id", "vendor_id", "status"), ("count", "amount")),
    minute_totals.name: (minute_totals, ("project_id", "minute", "shard"), ("count", "amount")),
    people_served.name: (people_served, ("project_id", "beneficiary_id"), ("settled",)),
    people_totals.name: (
        people_totals,
        ("project_id", "shard"),
        ("allocated", "redeemed", "revoked", "people", "served"),
    ),
}


def kept(conn: Connection, project_id: int | None = None) -> dict[str, dict[tuple, tuple]]:
    """What the triggers hold, rows of all zeros left out (a total that went back to nothing)."""
    found = {}
    for name, (table, keys, values) in _SHAPES.items():
        rows = conn.execute(
            select(*(table.c[k] for k in keys), *(table.c[v] for v in values)).where(
                *_where(table.c.project_id, project_id)
            )
        )
        found[name] = {
            tuple(row[: len(keys)]): tuple(int(v) for v in row[len(keys) :])
            for row in rows
            if any(row[len(keys) :])
        }
    return found


def check(conn: Connection, project_id: int | None = None) -> list[str]:
    """Differences between the running totals and a recount; empty when they agree."""
    want, have = expected(conn, project_id), kept(conn, project_id)
    problems = []
    for name in _SHAPES:
        for key in sorted(set(want[name]) | set(have[name]), key=repr):
            if want[name].get(key) != have[name].get(key):
                problems.append(
                    f"{name} {key}: kept {have[name].get(key)}, recount {want[name].get(key)}"
                )
    return problems


def repair(conn: Connection, project_id: int | None = None) -> None:
    """Replace the running totals with a recount (in the caller's transaction).

    Run it while nothing writes redemptions or entitlements (the migration does): a write
    committed between the recount and the end of this transaction would be counted twice.
    """
    want = expected(conn, project_id)
    last_at = {
        tuple(row[:3]): row[3]
        for row in conn.execute(
            select(
                vendor_totals.c.project_id,
                vendor_totals.c.vendor_id,
                vendor_totals.c.status,
                vendor_totals.c.last_at,
            ).where(*_where(vendor_totals.c.project_id, project_id))
        )
    }
    latest = conn.execute(
        select(R.project_id, R.vendor_id, R.status, func.max(R.confirmed_at))
        .where(*_where(R.project_id, project_id))
        .group_by(R.project_id, R.vendor_id, R.status)
    )
    for p, v, s, at in latest:
        known = [x for x in (last_at.get((p, v, s)), at) if x is not None]
        last_at[(p, v, s)] = max(known) if known else None
    for name, (table, keys, values) in _SHAPES.items():
        conn.execute(delete(table).where(*_where(table.c.project_id, project_id)))
        rows = [
            {**dict(zip(keys, key, strict=True)), **dict(zip(values, vals, strict=True))}
            for key, vals in want[name].items()
        ]
        if table is vendor_totals:
            for row in rows:
                row["last_at"] = last_at.get((row["project_id"], row["vendor_id"], row["status"]))
        if rows:
            conn.execute(insert(table), rows)

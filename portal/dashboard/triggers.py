"""The triggers that keep the dashboard's running totals (``models``), for PostgreSQL and SQLite.

Each source row contributes fixed amounts to a few total rows (``Part``). A trigger takes the
old row's contribution away and adds the new row's: an insert only adds, a delete only takes
away, and an update does both, whatever columns or statuses changed and whoever changed them.
Each step is one upsert (``INSERT … ON CONFLICT DO UPDATE``), which both databases run inside
triggers, so the same statements serve both; only the minute arithmetic and the trigger
wrapping differ.

The DDL is attached to the source tables (``after_create``), so ``db.create_all()`` builds it
as the migrations do; migration 0012 calls ``create`` and ``recount.repair`` for existing data.
A later migration that rebuilds ``redemptions`` or ``entitlements`` on SQLite (Alembic's batch
mode copies the table) drops their triggers and must call ``create`` again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import DDL, event
from sqlalchemy.engine import Connection

from portal.dashboard.models import MINUTE_SHARDS, SHARDS
from portal.disbursements.models import Entitlement
from portal.redemptions.models import SETTLED, Redemption

# A redemption counts in the chart under the minute the chain confirmed it (an older row
# settled without that time falls back to when its code was accepted, then to its creation).
_SETTLED_AT = "coalesce({r}.settled_at, {r}.confirmed_at, {r}.created_at)"
_MINUTE = {
    "postgresql": "floor(extract(epoch from " + _SETTLED_AT + ") / 60)::bigint",
    "sqlite": "CAST(strftime('%s', " + _SETTLED_AT + ") AS INTEGER) / 60",
}
_IS_SETTLED = f"{{r}}.status = '{SETTLED}'"
_PERSON = "{r}.beneficiary_id IS NOT NULL"
_PERSON_SETTLED = (
    "(SELECT s.settled FROM dashboard_people_served s"
    " WHERE s.project_id = {r}.project_id AND s.beneficiary_id = {r}.beneficiary_id)"
)


@dataclass(frozen=True)
class Part:
    """One total row a source row adds to: its key, the values it adds, and when it does."""

    table: str
    keys: dict[str, str]
    values: dict[str, str]
    when: str = "1 = 1"
    # Checked after this row's earlier parts ran; {edge} is 1 when adding, 0 when taking away.
    latest: dict[str, str] = field(default_factory=dict)  # column -> value kept as a maximum
    # Adds 1 to the row's ``changes`` on every step, taking away included: the project's sum of
    # them moves with every change in the same commit (``snapshot.changes``), so a page load
    # knows a stored snapshot is stale even when the notice of the change was lost.
    counted: bool = False


REDEMPTION_PARTS = (
    Part(
        "dashboard_vendor_totals",
        keys={"project_id": "{r}.project_id", "vendor_id": "{r}.vendor_id", "status": "{r}.status"},
        values={"count": "1", "amount": "{r}.amount"},
        latest={"last_at": "{r}.confirmed_at"},
        counted=True,
    ),
    Part(
        "dashboard_minute_totals",
        keys={
            "project_id": "{r}.project_id",
            "minute": "{minute}",
            "shard": "{r}.vendor_id % {minute_shards}",
        },
        values={"count": "1", "amount": "{r}.amount"},
        when=_IS_SETTLED,
    ),
    Part(
        "dashboard_people_served",
        keys={"project_id": "{r}.project_id", "beneficiary_id": "{r}.beneficiary_id"},
        values={"settled": "1"},
        when=f"{_IS_SETTLED} AND {_PERSON}",
    ),
    # Runs after the count above changed: a person counts as served when theirs became 1 (adding)
    # or fell to 0 (taking away).
    Part(
        "dashboard_people_totals",
        keys={"project_id": "{r}.project_id", "shard": "{r}.beneficiary_id % {shards}"},
        values={"served": "1"},
        when=f"{_IS_SETTLED} AND {_PERSON} AND {_PERSON_SETTLED} = {{edge}}",
    ),
)

ENTITLEMENT_PARTS = (
    Part(
        "dashboard_people_totals",
        keys={"project_id": "{r}.project_id", "shard": "{r}.beneficiary_id % {shards}"},
        values={
            "allocated": "{r}.allocated",
            "redeemed": "{r}.redeemed",
            "revoked": "{r}.revoked",
            "people": "CASE WHEN {r}.allocated > 0 THEN 1 ELSE 0 END",
        },
        counted=True,
    ),
)

# Columns whose change moves a total; an update touching none of them (a code's tries, a
# job id) costs the trigger nothing.
WATCHED = {
    "redemptions": (
        "project_id",
        "vendor_id",
        "beneficiary_id",
        "status",
        "amount",
        "confirmed_at",
        "settled_at",
        "created_at",
    ),
    "entitlements": ("project_id", "beneficiary_id", "allocated", "redeemed", "revoked"),
}
PARTS = {"redemptions": REDEMPTION_PARTS, "entitlements": ENTITLEMENT_PARTS}


def _statement(part: Part, dialect: str, row: str, adding: bool, counting: bool) -> str:
    def fill(text: str) -> str:
        return text.format(
            r=row,
            minute=_MINUTE[dialect].format(r=row),
            edge=int(adding),
            shards=SHARDS,
            minute_shards=MINUTE_SHARDS,
        )

    sign = "" if adding else "-"
    columns = [*part.keys, *part.values, *(part.latest if adding else {})]
    exprs = [fill(v) for v in part.keys.values()]
    exprs += [f"{sign}({fill(v)})" for v in part.values.values()]
    exprs += [fill(v) for v in (part.latest.values() if adding else ())]
    updates = [f"{c} = {part.table}.{c} + excluded.{c}" for c in part.values]
    if counting and part.counted:
        columns.append("changes")
        exprs.append("1")
        updates.append(f"changes = {part.table}.changes + 1")
    for column in part.latest if adding else ():
        updates.append(
            f"{column} = CASE WHEN excluded.{column} IS NULL THEN {part.table}.{column}"
            f" WHEN {part.table}.{column} IS NULL OR excluded.{column} > {part.table}.{column}"
            f" THEN excluded.{column} ELSE {part.table}.{column} END"
        )
    return (
        f"INSERT INTO {part.table} ({', '.join(columns)})"
        f" SELECT {', '.join(exprs)} WHERE {fill(part.when)}"
        f" ON CONFLICT ({', '.join(part.keys)}) DO UPDATE SET {', '.join(updates)}"
    )


def _body(table: str, dialect: str, row: str, adding: bool, counting: bool) -> str:
    parts = PARTS[table]
    return ";\n".join(_statement(p, dialect, row, adding, counting) for p in parts) + ";"


def _changed(table: str, dialect: str) -> str:
    differs = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    return " OR ".join(f"OLD.{c} {differs} NEW.{c}" for c in WATCHED[table])


def statements(table: str, dialect: str, counting: bool = True) -> list[str]:
    """The DDL that (re)creates ``table``'s dashboard triggers on this dialect. ``counting``
    False leaves out the ``changes`` column, for migrations that run before it exists."""
    name = f"dashboard_{table}"
    columns = ", ".join(WATCHED[table])
    if dialect == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION {name}_totals() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    {_body(table, dialect, "OLD", adding=False, counting=counting)}
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    {_body(table, dialect, "NEW", adding=True, counting=counting)}
  END IF;
  RETURN NULL;
END
$$""",
            f"DROP TRIGGER IF EXISTS {name}_write ON {table}",
            f"DROP TRIGGER IF EXISTS {name}_update ON {table}",
            f"CREATE TRIGGER {name}_write AFTER INSERT OR DELETE ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION {name}_totals()",
            f"CREATE TRIGGER {name}_update AFTER UPDATE OF {columns} ON {table}"
            f" FOR EACH ROW WHEN ({_changed(table, dialect)})"
            f" EXECUTE FUNCTION {name}_totals()",
        ]
    if dialect == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {name}_insert",
            f"DROP TRIGGER IF EXISTS {name}_update",
            f"DROP TRIGGER IF EXISTS {name}_delete",
            f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} FOR EACH ROW BEGIN\n"
            f"{_body(table, dialect, 'NEW', adding=True, counting=counting)}\nEND",
            f"CREATE TRIGGER {name}_update AFTER UPDATE OF {columns} ON {table} FOR EACH ROW"
            f" WHEN {_changed(table, dialect)} BEGIN\n"
            f"{_body(table, dialect, 'OLD', adding=False, counting=counting)}\n"
            f"{_body(table, dialect, 'NEW', adding=True, counting=counting)}\nEND",
            f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} FOR EACH ROW BEGIN\n"
            f"{_body(table, dialect, 'OLD', adding=False, counting=counting)}\nEND",
        ]
    raise NotImplementedError(f"no dashboard triggers for {dialect}")


def drop_statements(table: str, dialect: str) -> list[str]:
    name = f"dashboard_{table}"
    if dialect == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {name}_write ON {table}",
            f"DROP TRIGGER IF EXISTS {name}_update ON {table}",
            f"DROP FUNCTION IF EXISTS {name}_totals()",
        ]
    return [f"DROP TRIGGER IF EXISTS {name}_{op}" for op in ("insert", "update", "delete")]


def _ddl(sql: str) -> DDL:
    # DDL() formats its text with %: the trigger text has '%' (shard, '%s' on SQLite).
    return DDL(sql.replace("%", "%%"))


def create(conn: Connection, counting: bool = True) -> None:
    """(Re)create every dashboard trigger on this connection's database."""
    for table in PARTS:
        for sql in statements(table, conn.dialect.name, counting):
            conn.execute(_ddl(sql))


def drop(conn: Connection) -> None:
    for table in PARTS:
        for sql in drop_statements(table, conn.dialect.name):
            conn.execute(_ddl(sql))


def _attach() -> None:
    """``create_all`` makes the triggers right after their table, on either database."""
    for model in (Redemption, Entitlement):
        table = model.__table__
        for dialect in ("postgresql", "sqlite"):
            for sql in statements(table.name, dialect):
                event.listen(table, "after_create", _ddl(sql).execute_if(dialect=dialect))
        # A PostgreSQL function outlives its table: drop_all takes it along.
        for sql in drop_statements(table.name, "postgresql")[-1:]:
            event.listen(table, "after_drop", DDL(sql).execute_if(dialect="postgresql"))


_attach()

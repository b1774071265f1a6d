"""Which projects a transaction touched, as far as the dashboard cares.

Session events are global, so this stays cheap: during the transaction it only notes project
ids (or row ids to map to projects later) of changed Redemption, Entitlement, ChainTx,
DisbursementBatch and Job rows, from the unit of work (``after_flush``) and from ORM-enabled
INSERT/UPDATE/DELETE statements (``on_execute``): redemptions and job claims change rows with
conditional UPDATEs that never pass through the unit of work. Other tables cost a dictionary
lookup, selects cost nothing, and no SQL is run here.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

from portal.chain.models import ChainTx, ProjectChain
from portal.disbursements.models import Disbursement, DisbursementBatch, Entitlement
from portal.jobs.models import Job
from portal.redemptions.models import Redemption

_PROJECTS = "dashboard_projects"  # session.info: project ids touched in this transaction
_LOOKUPS = "dashboard_lookups"  # session.info: {table name: row ids} to map to projects

# Per watched table, the columns whose change the screen shows: a unit-of-work update touching
# none of them (a job's sent_at, a redemption's wrong-code count) is ignored.
_COLUMNS = {
    "redemptions": {"status", "amount", "confirmed_at", "settled_at", "vendor_id"},
    "entitlements": {"allocated", "redeemed", "revoked"},
    "chain_txs": {"status", "error"},
    "jobs": {"status", "queue"},
    "disbursement_batches": {"status"},
    # The heading: a snapshot stored for page loads must not outlive a deployment.
    "project_chains": {"status", "symbol", "decimals"},
}
_MODELS = {
    model.__table__.name: model
    for model in (
        Redemption,
        Entitlement,
        ChainTx,
        Job,
        DisbursementBatch,
        Disbursement,
        ProjectChain,
    )
}
_TABLES = {name: model.__table__ for name, model in _MODELS.items()}
# A batch has no project column: it is reached through its disbursement.
_PARENT = {"disbursement_batches": ("disbursement_id", "disbursements")}


def _note_project(sess, project_id: int | None) -> None:
    if project_id is not None:
        sess.info.setdefault(_PROJECTS, set()).add(project_id)


def _note_lookup(sess, table: str, ids: Iterable[int]) -> None:
    ids = {i for i in ids if isinstance(i, int)}
    if ids:
        sess.info.setdefault(_LOOKUPS, {}).setdefault(table, set()).update(ids)


def _note_row(sess, table: str, values: dict) -> None:
    """A row given as column values (an object's, or a statement's parameters)."""
    if "project_id" in values:
        _note_project(sess, values["project_id"])
    elif table in _PARENT and _PARENT[table][0] in values:
        column, parent = _PARENT[table]
        _note_lookup(sess, parent, [values[column]])
    elif "id" in values:
        _note_lookup(sess, table, [values["id"]])


def _changed(obj, table: str) -> bool:
    state = inspect(obj)
    return any(state.attrs[key].history.has_changes() for key in _COLUMNS[table])


def after_flush(sess, _flush_context) -> None:
    for group, check in ((sess.new, False), (sess.dirty, True), (sess.deleted, False)):
        for obj in group:
            table = getattr(obj, "__tablename__", None)
            if table not in _COLUMNS or (check and not _changed(obj, table)):
                continue
            column = _PARENT[table][0] if table in _PARENT else "project_id"
            _note_row(sess, table, {column: getattr(obj, column)})


def _where_values(where, table: str) -> dict[str, set]:
    """Values compared with ``=`` or ``IN`` to this table's columns in a WHERE clause."""
    found: dict[str, set] = {}
    if where is None:
        return found
    for element in visitors.iterate(where):
        if not isinstance(element, BinaryExpression):
            continue
        if element.operator not in (operators.eq, operators.in_op):
            continue
        left, right = element.left, element.right
        owner = getattr(left, "table", None)
        if owner is None or owner.name != table or not isinstance(right, BindParameter):
            continue
        value = right.effective_value
        values = value if isinstance(value, list | tuple | set) else [value]
        found.setdefault(left.name, set()).update(v for v in values if isinstance(v, int))
    return found


def on_execute(state) -> None:
    """ORM-enabled INSERT/UPDATE/DELETE: their rows never reach ``after_flush``."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(getattr(state.statement, "table", None), "name", None)
    if table not in _COLUMNS:
        return
    sess = state.session
    params = state.parameters
    for row in params if isinstance(params, list) else [params or {}]:
        _note_row(sess, table, row)
    if state.is_insert:
        return
    # Which columns a bulk UPDATE sets is not public API, so any one that names its rows counts.
    where = _where_values(state.statement.whereclause, table)
    if where.get("project_id"):
        for project_id in where["project_id"]:
            _note_project(sess, project_id)
    elif table in _PARENT and where.get(_PARENT[table][0]):
        _note_lookup(sess, _PARENT[table][1], where[_PARENT[table][0]])
    elif where.get("id"):
        # A deleted row is gone by the time it is looked up: only its project's next change
        # refreshes the screen. Nothing deletes these rows one by one today.
        _note_lookup(sess, table, _note_loaded(sess, table, where["id"]))


def _note_loaded(sess, table: str, ids: set) -> set:
    """Note the project of each row already loaded in the session (a job just claimed, the
    redemption being moved): no query later. Returns the ids still to look up. A row's
    project never changes, so a loaded value is as good as one read after the commit."""
    model = _MODELS[table]
    if table in _PARENT or "project_id" not in model.__table__.c:
        return ids
    left = set()
    for row_id in ids:
        obj = sess.identity_map.get(identity_key(model, row_id))
        loaded = obj.__dict__ if obj is not None else {}
        if "project_id" in loaded:  # loaded and not expired
            _note_project(sess, loaded["project_id"])
        else:
            left.add(row_id)
    return left


def forget(sess) -> None:
    sess.info.pop(_PROJECTS, None)
    sess.info.pop(_LOOKUPS, None)


def take(sess) -> tuple[set[int], dict[str, set]]:
    """What the transaction that just ended touched: project ids, and row ids to look up."""
    found = sess.info.pop(_PROJECTS, None) or set()
    return found, sess.info.pop(_LOOKUPS, None) or {}


def resolve(conn: Connection, lookups: dict[str, set]) -> set[int]:
    """The projects of rows known by id (one query per table)."""
    found: set[int] = set()
    for name, ids in lookups.items():
        table = _TABLES[name]
        if name in _PARENT:  # no project column of its own: through the parent row
            column, parent_name = _PARENT[name]
            parent = _TABLES[parent_name]
            query = select(parent.c.project_id).join_from(
                table, parent, table.c[column] == parent.c.id
            )
        else:
            query = select(table.c.project_id)
        rows = conn.scalars(query.where(table.c.id.in_(ids)))
        found.update(pid for pid in rows if pid is not None)
    return found

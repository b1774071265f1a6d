"""One owner of money rows: no module outside ``portal/ledger`` writes an entitlement's amounts or
a project's funded total. Read from the source (AST), so a new feature that writes them directly
fails here before it can drift from the ledger's rules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PORTAL = Path(__file__).resolve().parents[2] / "portal"
OWNER = PORTAL / "ledger"
MONEY_MODELS = {"Entitlement"}
MONEY_COLUMNS = {"allocated", "redeemed", "revoked", "funded"}
# Statements that write a model's table: update(X), insert(X), dialect_insert(X), X.__table__...
WRITERS = {"update", "insert", "dialect_insert", "pg_insert", "sqlite_insert", "delete"}
# Calls whose keywords are column values: .values(...), the transition helpers, constructors.
VALUE_CALLS = {"values", "change", "move", "Entitlement", "ProjectChain"}
RAW_SQL = re.compile(
    r"\b(update|insert\s+into|delete\s+from)\s+\"?(entitlements|project_chains)\b", re.I
)


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_money_model(node: ast.AST) -> bool:
    # Entitlement, models.Entitlement, Entitlement.__table__
    if isinstance(node, ast.Attribute) and node.attr == "__table__":
        node = node.value
    return _name(node) in MONEY_MODELS


def offences(source: str) -> list[str]:
    """What in ``source`` writes money rows, one line each."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            called = _name(node.func)
            if called in WRITERS and node.args and _is_money_model(node.args[0]):
                found.append(f"line {node.lineno}: {called}({ast.unparse(node.args[0])})")
            if called in VALUE_CALLS:
                for keyword in node.keywords:
                    if keyword.arg in MONEY_COLUMNS:
                        found.append(f"line {node.lineno}: {called}({keyword.arg}=...)")
                    if keyword.arg == "set_" and isinstance(keyword.value, ast.Dict):
                        found += _dict_keys(keyword.value, node.lineno)
                for arg in node.args:
                    if isinstance(arg, ast.Dict):
                        found += _dict_keys(arg, node.lineno)
            if called == "on_conflict_do_update":
                for keyword in node.keywords:
                    if isinstance(keyword.value, ast.Dict):
                        found += _dict_keys(keyword.value, node.lineno)
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr in MONEY_COLUMNS:
                    found.append(f"line {node.lineno}: assigns .{target.attr}")
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and RAW_SQL.search(node.value)
        ):
            found.append(f"line {node.lineno}: SQL writes a money table")
    return found


def _dict_keys(node: ast.Dict, line: int) -> list[str]:
    return [
        f"line {line}: sets '{key.value}'"
        for key in node.keys
        if isinstance(key, ast.Constant) and key.value in MONEY_COLUMNS
    ]


def test_only_the_ledger_writes_money_rows():
    found = {}
    for path in sorted(PORTAL.rglob("*.py")):
        if OWNER in path.parents:
            continue
        problems = offences(path.read_text(encoding="utf-8"))
        if problems:
            found[str(path.relative_to(PORTAL.parent))] = problems
    assert not found, f"money rows written outside portal/ledger: {found}"


def test_the_ledger_itself_is_seen_writing_them():
    """The check finds the real writes: pointed at the owner, it reports each operation."""
    entitlements = offences((OWNER / "entitlements.py").read_text(encoding="utf-8"))
    funds = offences((OWNER / "funds.py").read_text(encoding="utf-8"))
    assert len(entitlements) >= 4 and funds


@pytest.mark.parametrize(
    "source",
    [
        # How redemptions reserved before the ledger existed.
        "session.execute(update(Entitlement).where(x).values(redeemed=Entitlement.redeemed + 1))",
        "db.session.execute(sa.update(models.Entitlement.__table__).values({'redeemed': 0}))",
        "statement = dialect_insert(Entitlement).values(rows)",
        "s.on_conflict_do_update(index_elements=['a'], set_={'allocated': 1})",
        "update(ProjectChain).values(funded=ProjectChain.funded + amount)",
        "change(ProjectChain, 1, ('a',), 'b', funded=0)",
        "row.redeemed += amount",
        "pc.funded = 0",
        "db.session.add(Entitlement(project_id=1, beneficiary_id=2, allocated=5))",
        "db.session.execute(text('UPDATE entitlements SET redeemed = 0'))",
        "conn.exec_driver_sql('insert into \"project_chains\" values (1)')",
    ],
)
def test_each_way_of_writing_is_caught(source):
    assert offences(source), source


@pytest.mark.parametrize(
    "source",
    [
        "select(func.sum(Entitlement.revoked)).where(Entitlement.project_id == 1)",
        "found.chain.update(funded=supply, held_by_contract=held)",
        "left = Entitlement.allocated - Entitlement.redeemed",
        "total = row.allocated - row.redeemed",
        "'CREATE TRIGGER t AFTER UPDATE ON entitlements'",
    ],
)
def test_reading_is_not_writing(source):
    assert not offences(source), source


def test_only_the_ledger_creates_settlements():
    """A settlement's amount is money promised to a vendor: only ``portal/ledger/settlements``
    writes it, under the vendor's lock, after checking what is available."""
    root = Path(__file__).resolve().parents[2] / "portal"
    found = []
    for path in root.rglob("*.py"):
        if path.parts[-2] == "ledger":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            called = _name(node.func) if isinstance(node, ast.Call) else None
            if called == "Settlement" or (
                called in WRITERS and node.args and _name(node.args[0]) == "Settlement"
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
            if (
                called in VALUE_CALLS
                and any(k.arg == "amount" for k in node.keywords)
                and node.args
                and _name(node.args[0]) == "Settlement"
            ):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not found, f"settlements written outside portal/ledger: {found}"

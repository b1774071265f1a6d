"""Statements per redemption: what the Procfile processes sent to PostgreSQL.

``env()`` adds the variables that make every Python process of the stack load
``bench/statement_counter/sitecustomize.py``; ``read()`` sums the counts the processes wrote,
by role (web: gunicorn, worker: dramatiq) and first keyword, at the moment it is called.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

COUNTER = Path(__file__).resolve().parent / "statement_counter"


def env(folder: Path) -> dict[str, str]:
    where = folder / "statements"
    where.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(p for p in (str(COUNTER), os.environ.get("PYTHONPATH", "")) if p)
    return {"BENCH_STATEMENTS_DIR": str(where), "PYTHONPATH": path}


def _role(argv: list[str]) -> str | None:
    line = " ".join(argv)
    if "gunicorn" in line:
        return "web"
    if "dramatiq" in line:
        return "worker"
    return None


def read(folder: Path) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for path in (folder / "statements").glob("*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):  # being replaced right now: the next read has it
            continue
        role = _role(data.get("argv") or [])
        if role is None:
            continue
        mine = found.setdefault(role, {})
        for word, n in data["counts"].items():
            mine[word] = mine.get(word, 0) + n
    return found


def per_redemption(before: dict, after: dict, redemptions: int) -> dict[str, dict[str, float]]:
    """Statements per redemption by role and keyword, and each role's total."""
    result: dict[str, dict[str, float]] = {}
    for role, counts in after.items():
        earlier = before.get(role, {})
        diff = {w: n - earlier.get(w, 0) for w, n in counts.items()}
        row = {w: round(n / max(redemptions, 1), 1) for w, n in sorted(diff.items()) if n}
        row["total"] = round(sum(diff.values()) / max(redemptions, 1), 1)
        result[role] = row
    return result

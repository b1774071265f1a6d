"""``bench/settle.py --quick`` on the real stack (the Procfile's release, web and worker,
PostgreSQL, Redis, anvil of its own, the local mobile-money server with callbacks): every
settlement approved, burned once, paid once, the ledger check clean, nothing left behind."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.support import bench_run, services, stack

# The bench's own processes on the suite's PostgreSQL (tests/support/fixtures.py).
pytestmark = pytest.mark.pg_heavy


def test_quick_settlement_bench_pays_every_settlement_once(pg_service, anvil_binary):
    returncode, r = bench_run.run("settle.py", "--quick")
    detail = json.dumps({k: r.get(k) for k in ("statuses", "error_samples", "ledger_verify")})
    assert returncode == 0, detail
    assert r["errors"] == 0, detail
    assert (r["web"], r["worker"]) == (stack.procfile()["web"], stack.procfile()["worker"])
    assert r["statuses"] == {"paid": r["count"]}, detail
    assert 0 < r["two_approvers"] < r["count"]  # the threshold splits them
    # Once each: one burn, one transfer at the provider, one payout.
    assert r["gas_settle"]["n"] == r["count"]
    assert r["provider"]["transfers"] == r["provider"]["transfer_posts"] == r["count"]
    assert r["payouts"] == {"paid": r["count"]}
    verified = r["ledger_verify"]
    assert (verified["mismatches"], verified["exit"]) == (0, 0), verified
    assert verified["checked"] > r["count"]  # every settlement, vendor and entitlement
    # A burn costs more than a plain transfer (a storage write for the id, the event, the
    # token's burn), but within a small factor.
    assert 1.0 < r["gas_ratio"] < 3.0, r["gas_ratio"]
    assert r["approval_to_paid_ms"]["n"] == r["count"]
    for role, pid in r["pids"].items():
        assert not services.pid_alive(pid), f"{role} (pid {pid}) outlived the benchmark"
    with psycopg.connect(pg_service.admin_url, autocommit=True) as conn:
        left = conn.execute("select 1 from pg_database where datname = %s", (r["database"],))
        assert left.fetchone() is None, "the benchmark's database was not dropped"

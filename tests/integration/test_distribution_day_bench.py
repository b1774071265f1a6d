"""``bench/distribution_day.py --quick`` on the real stack (the Procfile's web and worker,
PostgreSQL, a redis-server and anvil of its own, SMS through the HTTP provider): a few vendors
charge while dashboards are open, nothing fails, and everything it started is gone after."""

from __future__ import annotations

import json

import psycopg
import pytest

from tests.support import bench_run, services, stack

# The bench's own processes on the suite's PostgreSQL (tests/support/fixtures.py).
pytestmark = pytest.mark.pg_heavy


def _run(*args: str) -> dict:
    returncode, result = bench_run.run("distribution_day.py", "--quick", *args)
    detail = json.dumps({k: result.get(k) for k in ("errors_by_kind", "error_examples")})
    assert returncode == 0, detail
    assert result["errors"] == 0, detail
    return result


def test_sixty_four_vendors_charging_at_once_over_http_have_no_error(pg_service, anvil_binary):
    """Every vendor's phone through the Procfile's gevent web process at the same moment (the
    first charges start together): no 5xx, no time-out, every payment confirmed."""
    result = _run(
        "--vendors", "64", "--people-per-vendor", "1", "--seconds", "8", "--dashboards", "10"
    )
    assert result["vendors_signed_in"] == result["vendor_sockets"] == 64
    assert result["redemptions_started"] >= 64
    assert result["redemptions_confirmed"] == result["redemptions_started"]


def test_a_short_distribution_day_runs_clean_and_leaves_nothing_behind(pg_service, anvil_binary):
    result = _run("--seconds", "10")
    assert result["procfile"]["web"] == stack.procfile()["web"]
    assert result["redemptions_confirmed"] > 0
    assert result["redemptions_confirmed"] == result["redemptions_started"]
    assert result["dashboards_connected"] == 20
    assert result["vendor_sockets"] == result["vendors_signed_in"] == 5
    assert result["broadcast_ms"]["n"] > 0  # every screen saw the confirmations
    assert result["staff_pages_ms"]["all"]["n"] > 0
    assert result["baseline_transfer_quiet_ms"]["n"] == 10

    for role, pid in result["pids"].items():
        assert not services.pid_alive(pid), f"{role} (pid {pid}) outlived the benchmark"
    with psycopg.connect(pg_service.admin_url, autocommit=True) as conn:
        left = conn.execute(
            "select 1 from pg_database where datname = %s", (result["database"],)
        ).fetchone()
    assert left is None, "the benchmark's database was not dropped"

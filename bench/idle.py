#!/usr/bin/env python3
"""What the production stack costs while nobody uses it: CPU per second of each process.

The Procfile's web and worker commands run on anvil, a fresh PostgreSQL database and Redis, as
in ``bench/redeem.py``, freshly released, with no traffic. After a settling pause, the CPU
(user + system) of the web process, the worker processes, the database's backends and anvil is
read over a window. Every payment competes with this background for the same cores: the
queues' consumers, the job leases' heartbeats, the sweeper, the chain watch. The baseline, in
the same run, is the same stack with ``JOB_DOORBELL=false``: Dramatiq's own consumers, which
poll an empty queue after a backoff growing to the worker timeout. Ends with one JSON line.

    .venv/bin/python bench/idle.py [--settle 15] [--window 30] [--env NAME=VALUE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import _common  # noqa: E402  (bench/ is this script's folder)
import _redeem_stages  # noqa: E402
import _services  # noqa: E402

from tests.support import stack  # noqa: E402


def measure(args, settings: dict[str, str]) -> dict:
    cleanup: list = []
    try:
        started = _services.start("idle", cleanup, keep_logs=False)
        env = started.env("idle", **settings)
        stack.run_procfile_release(env)
        web, worker = _services.start_procfile(env, started.folder, cleanup)
        time.sleep(args.settle)
        pids = {"web": web.pid, "worker": worker.pid, "anvil": started.node.pid}
        load_before = _common.load_average()
        before = _redeem_stages.cpu_seconds(pids, started.database)
        began = time.monotonic()
        time.sleep(args.window)
        after = _redeem_stages.cpu_seconds(pids, started.database)
        seconds = time.monotonic() - began
        return {
            "cpu_ms_per_s": {
                name: round(1000 * (after[name] - before.get(name, 0.0)) / seconds, 1)
                for name in after
            },
            "window_s": round(seconds, 1),
            "load_before": load_before,
            "load_after": _common.load_average(),
        }
    finally:
        _common.clean_up(cleanup)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=15.0)
    parser.add_argument("--window", type=float, default=30.0)
    _common.add_env_option(parser)
    args = parser.parse_args()
    settings = _common.env_settings(args.env)
    runs = {
        "portal": measure(args, settings),
        "baseline": measure(args, {**settings, "JOB_DOORBELL": "false"}),
    }
    totals = {}
    for label, found in runs.items():
        cpu = found["cpu_ms_per_s"]
        totals[label] = sum(v for k, v in cpu.items() if k != "anvil")
        title = "as configured" if label == "portal" else "baseline, JOB_DOORBELL=false"
        print(f"idle production stack, {title}, {found['window_s']} s window")
        for name, value in cpu.items():
            print(f"  {name:<9} {value:7.1f} ms of CPU per second")
        share = totals[label] / 10
        print(f"  web, workers and database: {totals[label]:.1f} ms/s = {share:.1f} % of a core")
        print(f"  machine load before {found['load_before']}, after {found['load_after']}")
    ratio = totals["portal"] / totals["baseline"] if totals["baseline"] else None
    print(f"  ratio to the baseline: {ratio:.2f}" if ratio is not None else "  no baseline")
    _common.print_json_line(
        {
            "bench": "idle",
            "settings": args.env,
            **runs,
            "portal_cpu_ms_per_s": round(totals["portal"], 1),
            "baseline_cpu_ms_per_s": round(totals["baseline"], 1),
            "ratio": round(ratio, 3) if ratio is not None else None,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

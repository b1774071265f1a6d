#!/usr/bin/env python3
"""Settlements end to end: approval → burn on chain → mobile-money payout → paid, a thousand.

What runs, as the README's production set-up: anvil, a fresh PostgreSQL database, Redis, the
Procfile's ``release``, ``web`` (gunicorn, gevent) and ``worker`` (Dramatiq) commands as separate
processes, and a local mobile-money server in MTN MoMo's shape that calls the web process back
when a transfer is final (``tests/support/momo_server.py``).

Seeding, through the services in this process (``tests/support/settlement_world.py``): a
version-2 project, vendors each paid their whole balance in one redemption (one per vendor, not
one per settlement), each with a mobile-money account. Then, per vendor, ``--per-vendor`` − 1
cash-out requests as the vendor's phone makes them, and one settlement run that takes what is
left of every vendor; the project's approval rule asks a second approver above a threshold that
about a third of them exceed. Measured: two approvers approve every settlement through the web
process's decide form (a few sessions at once); the worker confirms each burn, asks the provider
for the payout, the provider's callback makes the worker ask for the status, and the settlement
is paid. Times come from the settlements' own timestamps (approved, settled on chain, paid).

Gas per settlement is read from the receipts of the ``settle`` transactions; the baseline, in
the same run on the same node, is a plain ERC-20 transfer to a fresh address
(``_chain_baseline``: its own account, so no nonce is shared with the portal). At the end
``flask ledger-verify`` compares the chain's event log with the database. Ends with one JSON line.

    .venv/bin/python bench/settle.py [--count 1000] [--per-vendor 10] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import queue
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import _common  # noqa: E402
import _data  # noqa: E402
import _services  # noqa: E402  (bench/ is this script's folder)
from _chain_baseline import Transfers  # noqa: E402

from tests.support import services, settlement_world, stack  # noqa: E402
from tests.support.momo_server import FakeMomo  # noqa: E402

PASSWORD = "a-long-bench-password-9"  # noqa: S105  (a throw-away database's users)
FINANCE = "finance@example.org"
APPROVERS = ("approver-1@example.org", "approver-2@example.org")
BALANCE = 100_000  # each vendor's, base units (1,000.00 at 2 decimals; the redeem cap per call)
FINAL = ("paid", "reconciled", "failed", "payout_failed")


def cash_out_amounts(per_vendor: int, balance: int) -> tuple[list[int], int]:
    """The vendor's own requests (1, 2, 3 units, again and again) and the threshold: a unit is
    balance / (2 × per_vendor), so the requests take at most (2k − 1)/2k of the balance and the
    run always has something left; the threshold is two units (a 3-unit request needs two)."""
    unit = balance // (2 * per_vendor)
    return [unit * (1 + j % 3) for j in range(per_vendor - 1)], 2 * unit


def make_settlements(world, per_vendor: int, finance_id: int) -> list[dict]:
    """Every vendor's cash-out requests, then one settlement run; each settlement's id, its
    approval request and how many approvals it needs."""
    from sqlalchemy import select

    from portal.approvals import services as approvals
    from portal.extensions import db
    from portal.projects.models import Project
    from portal.settlements import runs
    from portal.settlements import services as settlements
    from portal.settlements.models import Settlement

    asks, threshold = cash_out_amounts(per_vendor, world.amount)
    project = db.session.get(Project, world.project_id)
    approvals.set_threshold(project, threshold, finance_id)
    db.session.commit()
    for vendor_id in world.vendor_ids:
        for amount in asks:
            settlements.request(
                db.session.get(Project, world.project_id),
                vendor_id,
                amount,
                method_id=None,
                by_vendor=True,
            )
            db.session.commit()
    today = date.today()
    run = runs.open_run(db.session.get(Project, world.project_id), today, today, finance_id)
    db.session.commit()
    if run.created_count != len(world.vendor_ids):
        raise RuntimeError(f"the run made {run.created_count} settlements: {run.skipped}")
    rows = db.session.execute(
        select(Settlement.id, Settlement.approval_id, Settlement.amount)
        .where(Settlement.project_id == world.project_id)
        .order_by(Settlement.id)
    ).all()
    return [
        {"id": sid, "approval_id": aid, "needs": 2 if amount > threshold else 1}
        for sid, aid, amount in rows
    ]


class Approver(threading.Thread):
    """One browser tab per approver, deciding the settlements it takes from the queue: the first
    approver, and the second one where the threshold asks for two."""

    def __init__(self, base: str, work: queue.Queue):
        super().__init__(daemon=True)
        self.base, self.work = base, work
        self.sessions = []
        for email in APPROVERS:
            http = stack.sign_in(base, email, PASSWORD)
            self.sessions.append((http, stack.fresh_csrf(http, base)))
        self.post_seconds: list[float] = []
        self.errors: list[str] = []

    def decide(self, who: int, approval_id: int) -> None:
        http, token = self.sessions[who]
        started = time.perf_counter()
        reply = http.post(
            f"{self.base}/approvals/{approval_id}/decide",
            data={
                f"r{approval_id}-decision": "approve",
                f"r{approval_id}-reason": "",
                "csrf_token": token,
            },
            allow_redirects=False,
            timeout=60,
        )
        self.post_seconds.append(time.perf_counter() - started)
        if reply.status_code not in (302, 303):
            self.errors.append(f"approval {approval_id}: {reply.status_code}")

    def run(self) -> None:
        while True:
            try:
                item = self.work.get_nowait()
            except queue.Empty:
                return
            try:
                for who in range(item["needs"]):
                    self.decide(who, item["approval_id"])
            except Exception as exc:  # counted and reported: the bench goes on
                self.errors.append(f"approval {item['approval_id']}: {type(exc).__name__}")


def wait_final(engine, project_id: int, count: int, timeout: float) -> dict:
    import sqlalchemy as sa

    deadline = time.monotonic() + timeout
    counts: dict = {}
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            counts = dict(
                conn.execute(
                    sa.text(
                        "select status, count(*) from settlements where project_id = :p group by 1"
                    ),
                    {"p": project_id},
                ).all()
            )
        if sum(counts.get(s, 0) for s in FINAL) >= count:
            break
        time.sleep(0.5)
    return counts


def timings(engine, project_id: int, since=None) -> dict:
    """Per settlement, seconds from its (last) approval to settled on chain and to paid; the
    span from the first approval (or ``since``, when a worker started on a backlog) to the last
    paid and to the last settled on chain."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select approved_at, settled_at, paid_at from settlements "
                "where project_id = :p and paid_at is not null"
            ),
            {"p": project_id},
        ).all()
    if not rows:
        return {"to_settled": [], "to_paid": [], "span_paid": None, "span_settled": None}
    first = since or min(r.approved_at for r in rows)
    return {
        "to_settled": [(r.settled_at - r.approved_at).total_seconds() for r in rows],
        "to_paid": [(r.paid_at - r.approved_at).total_seconds() for r in rows],
        "span_paid": (max(r.paid_at for r in rows) - first).total_seconds(),
        "span_settled": (max(r.settled_at for r in rows) - first).total_seconds(),
    }


def settle_gas(engine, node) -> list[int]:
    """gasUsed of every settle transaction mined, from the node's receipts."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        hashes = conn.execute(
            sa.text(
                "select t.tx_hash from chain_settlements s join chain_txs t on t.id = s.tx_id "
                "where s.status = 'settled' order by s.id"
            )
        ).scalars()
        found = []
        for tx_hash in hashes:
            receipt = node.rpc("eth_getTransactionReceipt", tx_hash)
            found.append(int(receipt["gasUsed"], 16))
    return found


def ledger_verify(env: dict) -> dict:
    """``flask ledger-verify`` as an operator runs it: its last line, and its exit status."""
    done = subprocess.run(
        [stack.PYTHON, "-m", "flask", "--app", "wsgi", "ledger-verify"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    found = json.loads(lines[-1]) if lines else {"checked": None, "mismatches": None}
    return {**found, "exit": done.returncode}


def mean(values: list) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def run(args) -> dict:
    import sqlalchemy as sa

    from config import Config
    from portal import create_app
    from portal.extensions import db

    vendors = math.ceil(args.count / args.per_vendor)
    result: dict = {
        "bench": "settle",
        "count": vendors * args.per_vendor,
        "vendors": vendors,
        "per_vendor": args.per_vendor,
        "approver_sessions": args.sessions,
        "mode": "backlog" if args.backlog else "live",
        "web": stack.procfile()["web"],
        "worker": stack.procfile()["worker"],
    }
    cleanup = []
    try:
        started = _services.start("settle", cleanup, keep_logs=args.keep_logs)
        node, folder = started.node, started.folder
        result["database"] = started.database
        momo = FakeMomo()
        momo.__enter__()
        cleanup.append(lambda: momo.__exit__(None, None, None))
        keys, url = started.keys, started.url
        web_port = services.free_port()
        env = started.env(
            "settle",
            MOMO_BASE_URL=momo.url,
            MOMO_CALLBACK_BASE_URL=f"http://127.0.0.1:{web_port}",
            MOMO_API_USER=momo.api_user,
            MOMO_API_KEY=momo.api_key,
            MOMO_SUBSCRIPTION_KEY=momo.subscription_key,
            OUTBOUND_PRIVATE_HOSTS="127.0.0.1",  # the local provider
            LOGIN_IP_LIMIT="1000 per minute",  # every approver tab signs in from 127.0.0.1
            **args.env,
        )
        stack.run_procfile_release(env)
        finance_id = stack.create_user(env, FINANCE, PASSWORD, role="admin")
        for email in APPROVERS:
            stack.create_user(env, email, PASSWORD, role="admin")
        web, worker = _services.start_procfile(env, folder, cleanup, port=web_port)
        result["pids"] = {"web": web.pid, "worker": worker.pid, "anvil": node.pid}
        app = create_app(
            Config,
            role="worker",
            SQLALCHEMY_DATABASE_URI=url,
            SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 2},
            REDIS_URL=started.redis_url,
            BROKER="redis",
            SECRET_KEY=keys["SECRET_KEY"],
            PII_KEY=keys["PII_KEY"],
            INSTANCE_DIR=str(folder / "bench-process"),
            RATELIMIT_STORAGE_URI="memory://",
            WEB3_PROVIDER_URI=node.url,
            CHAIN_TREASURY_KEY=env["CHAIN_TREASURY_KEY"],  # the stack's treasury
            SOCKETIO_CHANNEL=env["SOCKETIO_CHANNEL"],
        )
        engine = sa.create_engine(url, pool_size=2)
        cleanup.append(engine.dispose)
        seeded_at = time.perf_counter()
        with app.app_context():
            world = settlement_world.make(vendors=vendors, amount=BALANCE, timeout=args.timeout)
            items = make_settlements(world, args.per_vendor, finance_id)
            db.session.remove()
        result["seed_s"] = round(time.perf_counter() - seeded_at, 1)
        result["two_approvers"] = sum(1 for i in items if i["needs"] == 2)

        if args.backlog:
            worker.stop()  # the approvals pile up; a fresh worker then drains them
        work: queue.Queue = queue.Queue()
        for item in items:
            work.put(item)
        approvers = [Approver(web.base_url, work) for _ in range(args.sessions)]
        result["load_before"] = _common.load_average()
        started = time.perf_counter()
        for approver in approvers:
            approver.start()
        for approver in approvers:
            approver.join(args.timeout)
        approving_s = time.perf_counter() - started
        drain_from = None
        if args.backlog:
            with engine.connect() as conn:  # the database's clock, as the timestamps
                booted = conn.execute(sa.text("select now() at time zone 'utc'")).scalar()
            worker = stack.ProcfileProcess("worker", env, folder)
            worker.start()
            cleanup.append(worker.stop)
            worker.wait_ready()
            result["pids"]["worker_drain"] = worker.pid
        counts = wait_final(engine, world.project_id, len(items), args.timeout)
        wall = time.perf_counter() - started
        result["load_after"] = _common.load_average()
        if args.backlog:
            # From the first job the fresh worker took: its start-up (imports, two processes)
            # is not the drain.
            with engine.connect() as conn:
                drain_from = conn.execute(
                    sa.text("select min(started_at) from jobs where started_at >= :t"),
                    {"t": booted},
                ).scalar()
            result["worker_boot_s"] = round((drain_from - booted).total_seconds(), 2)

        times = timings(engine, world.project_id, drain_from)
        paid = counts.get("paid", 0) + counts.get("reconciled", 0)
        errors = [e for a in approvers for e in a.errors]
        not_paid = len(items) - paid
        gas = settle_gas(engine, node)
        transfers = Transfers(node.url, fresh=True)
        base_seconds = transfers.many(args.baseline)
        base_gas = transfers.gas
        verified = ledger_verify(env)
        with engine.connect() as conn:
            payouts = dict(
                conn.execute(sa.text("select status, count(*) from payouts group by 1")).all()
            )
        result.update(
            statuses=counts,
            payouts=payouts,
            paid=paid,
            errors=len(errors) + not_paid,
            error_samples=errors[:5],
            not_paid=not_paid,
            approval_post_ms=_data.summary_ms([s for a in approvers for s in a.post_seconds]),
            approving_s=round(approving_s, 2),
            wall_s=round(wall, 2),
            approval_to_paid_ms=_data.summary_ms(times["to_paid"]),
            approval_to_settled_ms=_data.summary_ms(times["to_settled"]),
            paid_per_s=round(paid / times["span_paid"], 2) if times["span_paid"] else None,
            settled_per_s=(
                round(paid / times["span_settled"], 2) if times["span_settled"] else None
            ),
            gas_settle={
                "n": len(gas),
                "mean": mean(gas),
                "min": min(gas, default=None),
                "max": max(gas, default=None),
            },
            gas_transfer={"n": len(base_gas), "mean": mean(base_gas)},
            gas_ratio=round(mean(gas) / mean(base_gas), 3) if gas and base_gas else None,
            baseline_transfer_ms=_data.summary_ms(base_seconds),
            provider={
                "transfers": len(momo.transfers),
                "transfer_posts": len(momo.transfer_posts),
                "status_queries": sum(momo.status_queries.values()),
                "callbacks": len(momo.delivered),
                "callbacks_answered_2xx": sum(1 for _, s in momo.delivered if 200 <= s < 300),
            },
            ledger_verify=verified,
        )
        return result
    finally:
        _common.clean_up(cleanup)


def print_table(r: dict) -> None:
    p, s, g = r["approval_to_paid_ms"], r["approval_to_settled_ms"], r["gas_settle"]
    print(
        f"\n{r['count']} settlements ({r['vendors']} vendors × {r['per_vendor']}; "
        f"{r['two_approvers']} with two approvers), Procfile web and worker, PostgreSQL, Redis, "
        f"anvil, the local mobile-money server: {r['statuses']}, {r['errors']} errors"
    )
    print(f"  approval → paid     p50 {p['p50_ms']} ms   p95 {p['p95_ms']} ms   n {p['n']}")
    print(f"  approval → on chain p50 {s['p50_ms']} ms   p95 {s['p95_ms']} ms")
    since = "the draining worker's start" if r["mode"] == "backlog" else "the first approval"
    print(f"  {r['paid_per_s']} paid/s, {r['settled_per_s']} on chain/s, from {since}")
    print(f"  approval POST p50 {r['approval_post_ms']['p50_ms']} ms over {r['approving_s']} s")
    print(
        f"  gas per settle {g['mean']} (min {g['min']}, max {g['max']}); ERC-20 transfer "
        f"{r['gas_transfer']['mean']}; ratio {r['gas_ratio']}"
    )
    print(f"  provider {r['provider']}")
    print(f"  ledger-verify {r['ledger_verify']}")
    print(f"  machine load before {r['load_before']}, after {r['load_after']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="settlements")
    parser.add_argument("--per-vendor", type=int, default=10, help="settlements per vendor")
    parser.add_argument("--sessions", type=int, default=4, help="approver tabs at once")
    parser.add_argument("--baseline", type=int, default=50, help="direct ERC-20 transfers")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for each wait")
    parser.add_argument("--quick", action="store_true", help="24 settlements, for the tests")
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="approve everything with no worker running, then time a fresh worker draining it "
        "(the rates are then the worker's, not the approvers')",
    )
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra setting"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()
    args.env = dict(item.split("=", 1) for item in args.env)
    if args.quick:
        args.count, args.per_vendor, args.sessions, args.baseline = 24, 4, 2, 5
        args.timeout = min(args.timeout, 240)
    r = run(args)
    print_table(r)
    _common.print_json_line(r)
    ok = r["errors"] == 0 and r["ledger_verify"]["mismatches"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

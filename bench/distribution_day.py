#!/usr/bin/env python3
"""A distribution day on the production stack: vendors charging, dashboards open, staff browsing.

What runs, as the README and the Procfile tell operators to run it: the Procfile's ``release``
command (migrations) on a fresh PostgreSQL database, its ``web`` and ``worker`` commands (read
from the Procfile when the benchmark starts, so a change of serving model is what gets measured),
a redis-server of the benchmark's own on a free port, an anvil node of its own, and SMS through
the production HTTP provider (``SMS_PROVIDER=http``) pointed at a local Twilio-style server that
keeps every text, so codes are read the way a phone would read them.

Seed, through the portal's services (the worker processes do the chain work): one project,
deployed and funded, ``vendors x people-per-vendor`` people allocated, ``vendors`` approved shops,
``staff`` staff accounts. Every vendor signs in with the SMS code sent to its phone and keeps a
Socket.IO connection open; ``dashboards`` staff sockets (in separate client processes) subscribe
to the project's live dashboard.

Then for ``--seconds``: every vendor charges one person after another (charge form, the code the
person received by SMS, code entry, wait for "confirmed" on the vendor's socket, as the receipt
page does); staff browse the home page, the beneficiary list, a beneficiary, jobs, transactions
and the dashboard page. Measured: confirmed redemptions per second; code entry -> confirmed;
page times; broadcast (a confirmation's commit -> each dashboard socket receiving an update
emitted after it); errors (HTTP >= 500 and other failed requests, socket failures, redemptions
not confirmed: all must be 0); RSS and CPU of the web and worker process trees; machine load;
PostgreSQL connections. Baseline in the same run: an ERC-20 transfer sent straight to the node
and its receipt, before the load and during it. Ends with one JSON line.

    .venv/bin/python bench/distribution_day.py                # 2 minutes, 50 vendors, 500 sockets
    .venv/bin/python bench/distribution_day.py --quick        # a short smoke run

Everything started is stopped by PID at the end, on errors and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
for path in (str(REPO_ROOT), str(BENCH_DIR)):
    if path not in sys.path:
        sys.path.insert(0, path)

import _common  # noqa: E402
import _data  # noqa: E402
import _services  # noqa: E402
from _day_record import Errors, Timings, broadcast_latencies, fan_out  # noqa: E402

from tests.support import services, stack  # noqa: E402
from tests.support.anvil import DEV_KEY, Anvil  # noqa: E402

HIGH = "1000000 per minute"  # a day's traffic from one address: the limits are not what is measured
# A client process for dashboard sockets: ``distribution_day.py --dashboard-client FILE``.
CLIENT_FLAG = "--dashboard-client"
PASSWORD = "a-long-distribution-day-password-" + secrets.token_hex(4)


class Interrupted(Exception):
    pass


def _on_sigterm(*_):
    raise Interrupted("SIGTERM")


# --------------------------------------------------------------------------- the stack


def start_redis(folder: Path) -> tuple[services.ManagedProcess, str]:
    """A redis-server of our own on a free port (the shared one is never touched)."""
    return services.start_redis_server(folder, extra=("--maxclients", "10000"), timeout=15)


def pg_free_connections(admin_url: str) -> int | None:
    """max_connections minus what is in use (the server is shared with other work)."""
    import psycopg

    try:
        with psycopg.connect(admin_url, connect_timeout=5) as conn:
            row = conn.execute(
                "select current_setting('max_connections')::int - count(*) from pg_stat_activity"
            ).fetchone()
    except psycopg.Error:
        return None
    return int(row[0])


def portal_env(args, *, db_url, redis_url, folder, node_url, sms) -> dict:
    limits = {
        name: HIGH
        for name in (
            "VENDOR_CHARGE_LIMITS",
            "VENDOR_CODE_ENTRY_LIMIT",
            "VENDOR_SIGNIN_SMS_LIMITS",
            "VENDOR_CODE_IP_LIMIT",
            "BENEFICIARY_CODE_LIMITS",
            "BENEFICIARY_GUESS_LIMITS",
            "LOGIN_RATE_LIMIT",
            "LOGIN_IP_LIMIT",
            "LOGIN_ACCOUNT_LIMIT",
        )
    }
    return stack.portal_env(
        database_url=db_url,
        redis_url=f"{redis_url}/0",
        instance_dir=folder / "instance",
        secrets=services.make_secrets(),
        WEB3_PROVIDER_URI=node_url,
        CHAIN_FAUCET_KEY=DEV_KEY,
        SOCKETIO_CHANNEL=f"bench-day-{secrets.token_hex(4)}",
        VENDOR_MAX_SESSIONS="5",
        **limits,
        **sms.settings(),
        **_common.env_settings(args.env),
    )


def seed_app(env: dict, folder: Path):
    """A worker-role app in this process, on a pool of its own kept small (the database's
    connection limit is shared)."""
    from config import Config
    from portal import create_app

    return create_app(
        Config,
        role="worker",
        SQLALCHEMY_DATABASE_URI=env["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 2, "max_overflow": 0, "pool_pre_ping": True},
        REDIS_URL=env["REDIS_URL"],
        BROKER="redis",
        SECRET_KEY=env["SECRET_KEY"],
        PII_KEY=env["PII_KEY"],
        INSTANCE_DIR=str(folder / "bench-process"),
        RATELIMIT_STORAGE_URI="memory://",
        WEB3_PROVIDER_URI=env["WEB3_PROVIDER_URI"],
        SOCKETIO_CHANNEL=env["SOCKETIO_CHANNEL"],
        CHAIN_TREASURY_KEY=env["CHAIN_TREASURY_KEY"],  # the stack's treasury (stack.portal_env)
        **{k: env[k] for k in ("SMS_PROVIDER", "SMS_HTTP_URL", "SMS_ACCOUNT", "SMS_TOKEN",
                               "SMS_FROM", "OUTBOUND_PRIVATE_HOSTS")},
    )  # fmt: skip


def staff_cookie(base: str, email: str) -> str:
    http = stack.sign_in(base, email, PASSWORD)
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


# --------------------------------------------------------------------------- the day


async def day(args, ctx: dict, folder: Path) -> dict:
    """Vendors sign in, dashboards open, then the load; returns what the clients recorded."""
    from _day_clients import Vendor, VendorFigures, browse, event_names

    base, seeded, sms = ctx["base"], ctx["seeded"], ctx["sms"]
    redemption_event, _, _ = event_names()
    timeouts = {
        "http": args.http_timeout,
        "sms": args.sms_timeout,
        "confirm": args.confirm_timeout,
        "socket": args.socket_timeout,
    }
    figures = VendorFigures()
    vendors = [
        Vendor(j, base, phone, seeded.payers[j], seeded.project_id, sms, figures,
               timeouts=timeouts)
        for j, phone in enumerate(seeded.vendor_phones)
    ]  # fmt: skip
    phases: dict = {}
    ready: list[Vendor] = []
    try:
        started = time.monotonic()
        gate = asyncio.Semaphore(10)  # as shops open: a few at a time, not all in one instant

        async def sign_in(v: Vendor):
            async with gate:
                try:
                    await v.sign_in()
                    ready.append(v)
                except Exception as exc:
                    kind = getattr(exc, "kind", "vendor_sign_in_failed")
                    figures.errors.add(kind, f"vendor {v.index} sign-in: {exc}")

        await asyncio.gather(*(sign_in(v) for v in vendors))
        phases["vendor_sign_in_s"] = round(time.monotonic() - started, 1)
        print(f"  {len(ready)}/{len(vendors)} vendors signed in", flush=True)

        # Then the dashboards (separate processes, started meanwhile) open their sockets.
        (folder / "open").touch()
        started = time.monotonic()
        opened = await wait_dashboards(ctx, folder, args)
        phases["dashboards_open_s"] = round(time.monotonic() - started, 1)
        print(f"  {opened}/{args.dashboards} dashboard sockets subscribed", flush=True)

        async def connect(v: Vendor):
            try:
                await v.connect(redemption_event)
            except Exception as exc:
                figures.errors.add(getattr(exc, "kind", "vendor_socket_failed"), str(exc))

        await asyncio.gather(*(connect(v) for v in ready))
        connected = sum(1 for v in ready if v.sio is not None and v.sio.connected)
        print(f"  {connected}/{len(vendors)} vendor sockets subscribed", flush=True)

        staff_timings, staff_errors = Timings(), Errors()
        p = seeded.project_id
        pages = [
            ("home", "/"),
            ("beneficiaries", f"/beneficiaries/?project={p}"),
            ("beneficiary", f"/beneficiaries/{seeded.beneficiary_ids[0]}"),
            ("jobs", "/jobs/"),
            ("transactions", f"/projects/{p}/transactions"),
            ("dashboard page", f"/projects/{p}/live"),
        ]
        trickle = ctx["trickle"].start()
        load_start = time.monotonic()
        end = load_start + args.seconds
        print(f"  load for {args.seconds:.0f} s ...", flush=True)
        staff = [
            browse(base, ctx["cookies"][k % len(ctx["cookies"])], pages, end, staff_timings,
                   staff_errors, think=args.think, timeout=args.http_timeout, seed=k)
            for k in range(args.browsers)
        ]  # fmt: skip
        # Every signed-in vendor charges; one whose socket failed opens it again first.
        await asyncio.gather(*(v.charge_until(end, redemption_event) for v in ready), *staff)
        load_end = time.monotonic()
        phases["load_s"] = round(load_end - load_start, 1)
        ctx["baseline_under_load"] = trickle.stop()
        ctx["baseline_failures"] = trickle.failures
        in_window = sum(1 for at in figures.confirmed_at if at <= end)
        return {
            "figures": figures,
            "staff_timings": staff_timings,
            "staff_errors": staff_errors,
            "vendors_signed_in": len(ready),
            "vendor_sockets": connected,
            "confirmed_in_window": in_window,
            "phases": phases,
        }
    finally:
        await asyncio.gather(*(v.close() for v in vendors), return_exceptions=True)


def open_seconds(args) -> float:
    """How long the dashboards get to open: 500 in a minute is a slow morning."""
    return max(60.0, args.dashboards / 10)


async def wait_dashboards(ctx: dict, folder: Path, args) -> int:
    deadline = time.monotonic() + open_seconds(args) + 120
    names = ctx["dashboard_names"]
    while time.monotonic() < deadline:
        files = [folder / f"ready-{n}.json" for n in names]
        if all(f.exists() for f in files):
            return sum(json.loads(f.read_text())["connected"] for f in files)
        for proc in ctx["dashboard_procs"]:
            if not proc.running() and not (folder / f"result-{proc.name}.json").exists():
                raise RuntimeError(f"dashboard client {proc.name} exited:\n{proc.log_tail()}")
        await asyncio.sleep(0.5)
    return 0  # reported as sockets that never opened


def collect_dashboards(ctx: dict, folder: Path, timeout: float, grace: float) -> list[dict]:
    # The last confirmations' updates are still on their way to the screens when the vendors
    # stop: give them ``grace`` seconds before the screens close, or they would count as missed.
    time.sleep(grace)
    (folder / "stop").touch()
    results = []
    deadline = time.monotonic() + timeout
    for proc in ctx["dashboard_procs"]:
        out = folder / f"result-{proc.name}.json"
        while not out.exists() and proc.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        if out.exists():
            results.append(json.loads(out.read_text()))
        else:
            results.append({"missing": proc.name, "log": proc.log_tail(20)})
    return results


def start_dashboards(args, ctx: dict, folder: Path) -> None:
    from _day_clients import event_names

    _, topic, prefix = event_names()
    per = [args.dashboards // args.client_procs] * args.client_procs
    for k in range(args.dashboards % args.client_procs):
        per[k] += 1
    ctx["dashboard_procs"], ctx["dashboard_names"] = [], []
    for k, count in enumerate(per):
        if count == 0:
            continue
        name = f"dashboards{k}"
        cfg = {
            "name": name,
            "folder": str(folder),
            "base": ctx["base"],
            "cookies": ctx["cookies"],
            "project_id": ctx["seeded"].project_id,
            "topic": topic,
            "prefix": prefix,
            "count": count,
            "socket_timeout": args.socket_timeout,
            "connect_concurrency": 50,
            "open_seconds": open_seconds(args),
            "max_seconds": args.seconds + args.confirm_timeout + args.dashboards / 2 + 600,
        }
        path = folder / f"{name}.json"
        path.write_text(json.dumps(cfg))
        os.chmod(path, 0o600)  # it holds session cookies
        proc = services.ManagedProcess(
            name,
            [sys.executable, str(Path(__file__).resolve()), CLIENT_FLAG, str(path)],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            log_path=folder / f"{name}.log",
        ).start()
        ctx["cleanup"].append(proc.stop)
        ctx["dashboard_procs"].append(proc)
        ctx["dashboard_names"].append(name)


# --------------------------------------------------------------------------- the run


def run(args) -> dict:
    from _chain_baseline import Transfers, Trickle
    from _day_machine import Sampler
    from _sms_capture import SmsCapture

    from portal.extensions import db

    cleanup: list = []
    ctx: dict = {"cleanup": cleanup}
    result: dict = {
        "bench": "distribution_day",
        "procfile": {k: v for k, v in stack.procfile().items() if k in ("web", "worker")},
        "load_before": _common.load_average(),
        "settings": {
            "seconds": args.seconds,
            "vendors": args.vendors,
            "dashboards": args.dashboards,
            "browsers": args.browsers,
            "people": args.vendors * args.people_per_vendor,
            "env": args.env,
        },
    }
    folder = Path(tempfile.mkdtemp(prefix="portal-bench-day-"))
    if not args.keep_logs:
        cleanup.append(lambda: shutil.rmtree(folder, ignore_errors=True))
    else:
        result["logs"] = str(folder)
    try:
        print("starting anvil, PostgreSQL database, redis-server, SMS capture ...", flush=True)
        node = Anvil(log_dir=folder)
        cleanup.append(node.stop)
        node.start().wait_ready()
        pg = services.find_or_start_postgres()
        result["pg_free_connections_at_start"] = free = pg_free_connections(pg.admin_url)
        if free is not None and free < 60:
            print(
                f"WARNING: PostgreSQL has {free} free connections; the Procfile's stack may "
                "take up to 3 pools (web, 2 worker processes) of 15: expect pool timeouts",
                flush=True,
            )
        cleanup.append(pg.stop)
        name = pg.create_database("portal_bench_day")
        cleanup.append(lambda: pg.drop_database(name))
        redis_proc, redis_url = start_redis(folder)
        cleanup.append(redis_proc.stop)
        sms = SmsCapture().start()
        cleanup.append(sms.stop)
        env = portal_env(
            args,
            db_url=pg.sqlalchemy_url(name),
            redis_url=redis_url,
            folder=folder,
            node_url=node.url,
            sms=sms,
        )
        print("release (migrations), then the Procfile's web and worker ...", flush=True)
        stack.run_procfile_release(env)
        stack.create_user(env, "day-staff-0@example.org", PASSWORD, role="admin")
        web, worker = _services.start_procfile(env, folder, cleanup, wait=120)
        # Said in the result so a caller can check that all of it is gone afterwards.
        result["database"] = name
        result["pids"] = {
            "anvil": node.pid,
            "redis": redis_proc.pid,
            "web": web.pid,
            "worker": worker.pid,
        }
        sampler = Sampler({"web": web.pid, "worker": worker.pid}, (pg.admin_url, name)).start()
        cleanup.append(sampler.stop)

        print(
            f"seeding: {args.vendors} vendors, {args.vendors * args.people_per_vendor} people, "
            "deploy, fund, allocate ...",
            flush=True,
        )
        from _day_seed import seed

        app = seed_app(env, folder)
        seeded_at = time.monotonic()
        try:
            with app.app_context():
                ctx["seeded"] = seed(
                    vendors=args.vendors,
                    people_per_vendor=args.people_per_vendor,
                    staff=args.staff,
                    password=PASSWORD,
                )
                db.session.remove()
        finally:
            with app.app_context():
                db.engine.dispose()
            app.extensions["dramatiq_broker"].close()
        result["seed_s"] = round(time.monotonic() - seeded_at, 1)
        ctx["base"], ctx["sms"] = web.base_url, sms
        ctx["cookies"] = [staff_cookie(web.base_url, email) for email, _ in ctx["seeded"].staff]

        print(f"baseline: {args.baseline} ERC-20 transfers straight to anvil ...", flush=True)
        transfers = Transfers(node.url)
        quiet = transfers.many(args.baseline)
        ctx["trickle"] = Trickle(transfers, every=1.0)
        cleanup.append(ctx["trickle"].stop)

        print(f"opening {args.dashboards} dashboard sockets, signing vendors in ...", flush=True)
        start_dashboards(args, ctx, folder)
        recorded = asyncio.run(day(args, ctx, folder))
        dashboards = collect_dashboards(ctx, folder, timeout=120, grace=args.broadcast_grace)
        machine = sampler.stop()
        machine["load_after"] = _common.load_average()
        result.update(report(args, recorded, dashboards, quiet, ctx, machine, sms, web, worker))
        figures = recorded["figures"]
        missing = figures.unsettled + [i for i in figures.timed_out if i not in figures.late_ids]
        if missing:  # read before the database is dropped: the rows say what happened
            result["unsettled_rows"] = unsettled_rows(pg.sqlalchemy_url(name), missing[:20])
        result["logged_exceptions"] = {
            proc.kind: log_exceptions(proc.log_path) for proc in (web, worker)
        }
        return result
    finally:
        _common.clean_up(cleanup)


def report(args, recorded, dashboards, quiet, ctx, machine, sms, web, worker) -> dict:
    figures = recorded["figures"]
    errors = Errors()
    errors.merge(dict(figures.errors.counts), figures.errors.examples)
    errors.merge(dict(recorded["staff_errors"].counts), recorded["staff_errors"].examples)
    screens, connect_s, other, connected = [], [], {}, 0
    for part in dashboards:
        if "missing" in part:
            errors.add("dashboard_client_lost", part["missing"])
            continue
        errors.merge(part["errors"]["counts"], part["errors"]["examples"])
        screens.extend(part["screens"])
        connect_s.extend(part["connect_s"])
        connected += part["connected"]
        for k, v in part["other_events"].items():
            other[k] = other.get(k, 0) + v
    if sms.refused:
        errors.add("sms_refused", f"{sms.refused} posts to the SMS server were refused")
    latencies, misses = broadcast_latencies(figures.confirmed_stamps, screens, args.confirm_timeout)
    if misses:
        errors.add("broadcast_missed", f"{misses} (confirmation, screen) pairs got no update")
    for proc in (web, worker):
        if not proc.running():
            errors.add("process_died", f"{proc.name} exited:\n{proc.log_tail(20)}")
    load_s = recorded["phases"].get("load_s") or args.seconds
    confirmed = len(figures.code_to_confirmed)
    code = _data.summary_ms(figures.code_to_confirmed)
    under = _data.summary_ms(ctx.get("baseline_under_load", []))
    staff = recorded["staff_timings"].summary()
    return {
        "redemptions_confirmed": confirmed,
        "redemptions_started": figures.started,
        "redemptions_timed_out": len(figures.timed_out),
        "redemptions_confirmed_after_timeout": figures.late,
        "redemptions_per_s": round(recorded["confirmed_in_window"] / load_s, 2),
        "code_to_confirmed_ms": code,
        "charge_to_confirmed_ms": _data.summary_ms(figures.charge_to_confirmed),
        "charge_to_sms_ms": _data.summary_ms(figures.sms),
        "staff_pages_ms": staff,
        "vendor_pages_ms": figures.pages.summary(),
        "page_p95_ms": staff["all"]["p95_ms"],
        "broadcast_ms": _data.summary_ms(latencies),
        "broadcast_p95_ms": _data.summary_ms(latencies)["p95_ms"],
        "broadcast_fan_out": fan_out(screens),
        "dashboards_connected": connected,
        "dashboard_connect_ms": _data.summary_ms(connect_s),
        "dashboard_other_events": other,
        "vendors_signed_in": recorded["vendors_signed_in"],
        "vendor_sockets": recorded["vendor_sockets"],
        "errors": errors.total,
        "errors_by_kind": errors.as_dict()["by_kind"],
        "error_examples": {k: v[:2] for k, v in errors.examples.items()},
        "baseline_transfer_quiet_ms": _data.summary_ms(quiet),
        "baseline_transfer_under_load_ms": under,
        "baseline_failures": ctx.get("baseline_failures", 0),
        "ratio_p95_code_to_confirmed_vs_transfer_under_load": (
            round(code["p95_ms"] / under["p95_ms"], 1)
            if code["p95_ms"] and under["p95_ms"]
            else None
        ),
        "sms_received": sms.received,
        "machine": machine,
        "phases": recorded["phases"],
        "cpu_count": os.cpu_count(),
    }


def unsettled_rows(db_url: str, ids: list[int]) -> list[dict]:
    """The redemptions that did not end settled in time, with their transaction's state."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT r.id, r.status, r.error, r.tries, r.created_at, r.updated_at,"
                    " t.status AS tx_status, t.nonce, t.error AS tx_error, t.rollbacks,"
                    " t.created_at AS tx_created_at FROM redemptions r"
                    " LEFT JOIN chain_txs t ON t.id = r.chain_tx_id WHERE r.id = ANY(:ids)"
                ),
                {"ids": ids},
            )
            return [
                {k: str(v) if v is not None else None for k, v in row._mapping.items()}
                for row in rows
            ]
    finally:
        engine.dispose()


EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Timeout)\b.*")


def log_exceptions(path: Path, top: int = 5) -> dict[str, int]:
    """The exceptions a process logged, counted by their first line (addresses blanked), so
    a failed run says what broke without opening its logs."""
    counts: dict[str, int] = {}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        if EXCEPTION_LINE.match(line):
            key = re.sub(r"0x[0-9a-f]+", "0x…", line)[:160]
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:top])


def print_table(r: dict) -> None:
    def ms(s: dict) -> str:
        if not s or not s.get("n"):
            return "-"
        return f"p50 {s['p50_ms']:.0f} ms  p95 {s['p95_ms']:.0f} ms  (n {s['n']})"

    m = r["machine"]
    print()
    print(
        f"Distribution day, {r['settings']['seconds']:.0f} s: {r['vendors_signed_in']}/"
        f"{r['settings']['vendors']} vendors, {r['dashboards_connected']}/"
        f"{r['settings']['dashboards']} dashboard sockets, "
        f"{r['settings']['browsers']} staff browsing"
    )
    print(f"  web:    {r['procfile']['web']}")
    print(f"  worker: {r['procfile']['worker']}")
    print(f"  redemptions confirmed      {r['redemptions_confirmed']} of "
          f"{r['redemptions_started']} started, {r['redemptions_per_s']}/s")  # fmt: skip
    if r["redemptions_timed_out"]:
        print(
            f"  not confirmed in time      {r['redemptions_timed_out']} (of which "
            f"{r['redemptions_confirmed_after_timeout']} confirmed later)"
        )
    print(f"  code entry -> confirmed    {ms(r['code_to_confirmed_ms'])}")
    print(f"  charge -> confirmed        {ms(r['charge_to_confirmed_ms'])}")
    print(f"  staff pages                {ms(r['staff_pages_ms']['all'])}")
    print(f"  vendor pages               {ms(r['vendor_pages_ms']['all'])}")
    print(f"  broadcast (to each screen) {ms(r['broadcast_ms'])}")
    print(f"  baseline transfer, quiet   {ms(r['baseline_transfer_quiet_ms'])}")
    print(f"  baseline, under the load   {ms(r['baseline_transfer_under_load_ms'])}")
    print(f"  errors                     {r['errors']} {r['errors_by_kind']}")
    for row in r.get("unsettled_rows", []):
        print(f"    not settled: {row}")
    for role, found in r["logged_exceptions"].items():
        for line, n in found.items():
            print(f"    {role} logged {n} x {line}")
    for role, v in m["roles"].items():
        print(
            f"  {role:<7} RSS peak {v['rss_mb_peak']} MB over {v['processes']} processes, "
            f"{v['cpu_cores_mean']} cores on average"
        )
    print(
        f"  machine: {r['cpu_count']} cores, load before {r['load_before']}, max 1-min load "
        f"{m['load1_max']}, CPU busy {m['cpu_busy_pct_mean']} % on average; PostgreSQL "
        f"connections of the stack peak {m['pg_connections_peak']} (server-wide "
        f"{m['pg_server_connections_peak']})"
    )
    print()


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the load")
    parser.add_argument("--vendors", type=int, default=50)
    parser.add_argument("--people-per-vendor", type=int, default=4)
    parser.add_argument("--dashboards", type=int, default=500, help="dashboard sockets")
    parser.add_argument("--client-procs", type=int, default=2, help="processes for the sockets")
    parser.add_argument("--staff", type=int, default=10, help="staff accounts the sockets use")
    parser.add_argument("--browsers", type=int, default=3, help="staff browsing pages")
    parser.add_argument("--think", type=float, default=1.0, help="seconds between a staff's pages")
    parser.add_argument("--baseline", type=int, default=30, help="quiet baseline transfers")
    parser.add_argument("--http-timeout", type=float, default=30.0)
    parser.add_argument("--socket-timeout", type=float, default=20.0)
    parser.add_argument("--sms-timeout", type=float, default=30.0)
    parser.add_argument("--confirm-timeout", type=float, default=30.0)
    parser.add_argument(
        "--broadcast-grace",
        type=float,
        default=5.0,
        help="seconds the screens stay open after the last confirmation",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    _common.add_env_option(parser)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 15 s, 5 vendors, 20 sockets, 1 browser (unless given otherwise)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        given = set(argv if argv is not None else sys.argv[1:])
        quick = {
            "--seconds": 15.0,
            "--vendors": 5,
            "--dashboards": 20,
            "--browsers": 1,
            "--people-per-vendor": 2,
            "--staff": 2,
            "--baseline": 10,
            "--client-procs": 1,
        }
        for flag, value in quick.items():
            if not any(g == flag or g.startswith(flag + "=") for g in given):
                setattr(args, flag.lstrip("-").replace("-", "_"), value)
    return args


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [CLIENT_FLAG] and len(argv) == 2:
        from _day_clients import watch_dashboards

        watch_dashboards(argv[1])
        return 0
    args = parse(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        r = run(args)
    except (KeyboardInterrupt, Interrupted):
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print_table(r)
    _common.print_json_line(r)
    return 0 if r["errors"] == 0 and r["redemptions_confirmed"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

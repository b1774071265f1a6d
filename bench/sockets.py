#!/usr/bin/env python3
"""Live dashboards at scale: 500, 1,000, 2,000 signed-in sockets on the production web command.

What runs: the Procfile's ``web`` command as a platform runs it (gunicorn's gevent worker), on
PostgreSQL, Redis and a chain node (anvil), with the environment the README gives operators
(DATABASE_URL, REDIS_URL, WEB3_PROVIDER_URI, secrets). A staff user and a project are created
with the portal's own services; the user signs in through the login form a few times (each
browser has a session; the sockets share these sessions round-robin, under the sign-in limit).

The clients: one asyncio process speaking Engine.IO v4 / Socket.IO v5 over raw WebSockets
(``websockets``), each socket connected, signed in by its session cookie, and subscribed to the
project's ``dashboard`` topic as the page's script does (the ack carries the snapshot). A raw
client keeps the measuring side light: its CPU time is reported beside the server's, so a client
that could not keep up would show.

Broadcasts go the way a worker's do: a write-only Socket.IO Redis manager publishes a dashboard
snapshot (the real one, stamped with a sequence number and ``time.time()``) to the room
``dashboard:<project>`` on the portal's channel; the web process relays it to every subscribed
socket. Measured per level:

- connected: sockets that connected and whose subscription was acknowledged;
- broadcast latency: publish -> receipt at each socket, over every socket and broadcast
  (p50/p95/max), and the share of receipts that arrived at all;
- pages: p95 of ordinary staff pages fetched during the broadcasts by a separate process;
- RSS and CPU of the web worker process; CPU of the client process.

Baseline, in the same run: raw Redis PUBLISH -> SUBSCRIBE between two clients, at the same rate.
Target: 2,000 sockets, broadcast p95 < 1 s, page p95 < 200 ms. Prints a table, then one JSON line.

    python bench/sockets.py [--levels 500,1000,2000] [--broadcasts 30] [--rate 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
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

TARGET_BROADCAST_P95_MS = 1000.0
TARGET_PAGE_P95_MS = 200.0
EVENT = "dashboard.snapshot"  # portal.dashboard.publisher.DASHBOARD_UPDATED
SESSIONS = 8  # sign-ins; under LOGIN_RATE_LIMIT (20 per minute from one address)
PAGES = ("/", "/projects", "/projects/{project}", "/beneficiaries", "/jobs")
_SEQ = re.compile(r'"bench_seq":\s*(\d+)')


# --------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def _gunicorn_worker(master_shell_pid: int) -> int:
    """The PID of the gunicorn worker in the group of the Procfile's shell."""
    group = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if int(fields[2]) == master_shell_pid and b"gunicorn" in cmdline:
            group.append((int(entry), int(fields[1])))  # (pid, ppid)
    # sh -c -> gunicorn master -> worker: the worker is the one without children.
    parents = {ppid for _, ppid in group}
    workers = [pid for pid, _ in group if pid not in parents]
    if len(workers) != 1:
        raise RuntimeError(f"expected one gunicorn worker in group {master_shell_pid}: {group}")
    return workers[0]


# --------------------------------------------------------------------------- socket clients


class Socket:
    """One dashboard: Engine.IO over a WebSocket, Socket.IO namespace "/", one subscription."""

    def __init__(self, bench: Bench, cookie: str):
        self.bench, self.cookie = bench, cookie
        self.ws = None
        self.subscribed = asyncio.Event()
        self.failed: str | None = None
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        import websockets

        try:
            self.ws = await websockets.connect(
                self.bench.ws_url,
                additional_headers={"Cookie": self.cookie},
                compression=None,
                max_size=2**22,
                ping_interval=None,  # Engine.IO pings at its own level
                open_timeout=60,
            )
            opened = await asyncio.wait_for(self.ws.recv(), 60)
            if not opened.startswith("0"):
                raise RuntimeError(f"no Engine.IO open: {opened[:80]!r}")
            await self.ws.send("40")
            async for message in self.ws:
                if message == "2":
                    await self.ws.send("3")
                elif message.startswith("42"):
                    found = _SEQ.search(message, 0, 400) or _SEQ.search(message)
                    if found:
                        self.bench.received(int(found.group(1)), time.time())
                elif message.startswith("40"):
                    payload = {"topic": "dashboard", "project_id": self.bench.project_id}
                    await self.ws.send("421" + json.dumps(["subscribe", payload]))
                elif message.startswith("431"):
                    ack = json.loads(message[3:])[0]
                    if not ack.get("ok"):
                        raise RuntimeError(f"subscribe refused: {ack}")
                    self.bench.snapshot = self.bench.snapshot or ack.get("snapshot")
                    self.subscribed.set()
                elif message.startswith("44"):
                    raise RuntimeError(f"connect refused: {message[:200]}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed = f"{type(exc).__name__}: {exc}"[:300]
            self.subscribed.set()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


class Bench:
    def __init__(self, base_url: str, project_id: int, cookies: list[str]):
        self.ws_url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.project_id = project_id
        self.cookies = cookies
        self.sockets: list[Socket] = []
        self.snapshot: dict | None = None
        self.sent: dict[int, float] = {}
        self.receipts: dict[int, list[float]] = {}

    def received(self, seq: int, at: float) -> None:
        sent = self.sent.get(seq)
        if sent is not None:
            self.receipts.setdefault(seq, []).append(at - sent)

    async def grow_to(self, count: int, batch: int) -> int:
        """Open sockets until ``count`` exist; the number subscribed."""
        while len(self.sockets) < count:
            new = []
            for _ in range(min(batch, count - len(self.sockets))):
                sock = Socket(self, self.cookies[len(self.sockets) % len(self.cookies)])
                sock.task = asyncio.create_task(sock.run())
                self.sockets.append(sock)
                new.append(sock)
            await asyncio.wait_for(asyncio.gather(*(s.subscribed.wait() for s in new)), 120)
        return self.connected()

    def connected(self) -> int:
        return sum(
            1 for s in self.sockets if s.subscribed.is_set() and not s.failed and not s.task.done()
        )

    def failures(self) -> list[str]:
        return sorted({s.failed for s in self.sockets if s.failed})[:5]

    async def close(self) -> None:
        for sock in self.sockets:
            if sock.task:
                sock.task.cancel()
        await asyncio.gather(*(s.close() for s in self.sockets), return_exceptions=True)


async def broadcast_level(bench: Bench, emitter, room: str, count: int, rate: float, first: int):
    """Publish ``count`` snapshots at ``rate``/s; wait for them to arrive (or 10 s after)."""
    connected = bench.connected()
    base = dict(bench.snapshot or {})
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    seqs = list(range(first, first + count))
    for i, seq in enumerate(seqs):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        payload = {**base, "bench_seq": seq, "ts": time.time()}
        bench.sent[seq] = payload["ts"]
        # The Redis publish is a blocking call: off the loop that reads the sockets.
        await loop.run_in_executor(
            None, lambda p=payload: emitter.emit(EVENT, p, room=room, namespace="/")
        )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(len(bench.receipts.get(s, ())) >= connected for s in seqs):
            break
        await asyncio.sleep(0.1)
    latencies = [v for s in seqs for v in bench.receipts.get(s, ())]
    expected = connected * count
    return latencies, (len(latencies) / expected if expected else None)


# --------------------------------------------------------------------------- pages (own process)


def fetch_pages(base: str, email: str, password: str, project_id: int, seconds: float) -> None:
    """``--pages``: fetch staff pages one after another for ``seconds``; print the timings."""
    http = stack.sign_in(base, email, password)
    timings, errors = [], 0
    paths = [p.format(project=project_id) for p in PAGES]
    for path in paths:  # the first view of a page compiles its template: not what is measured
        http.get(base + path, timeout=30)
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        path = paths[i % len(paths)]
        i += 1
        started = time.perf_counter()
        try:
            reply = http.get(base + path, timeout=30)
            ok = reply.status_code == 200
        except Exception:
            ok = False
        timings.append(time.perf_counter() - started)
        errors += 0 if ok else 1
        time.sleep(0.05)  # a person clicking, not a load generator
    print(json.dumps({"timings": timings, "errors": errors}), flush=True)


def setup_portal(email: str) -> None:
    """``--setup``: a project the user is a member of, made with the portal's services."""
    from sqlalchemy import select

    from portal import create_app
    from portal.accounts.models import User
    from portal.extensions import db
    from portal.projects import services as projects

    app = create_app(role="worker")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        project = projects.create({"name": f"Bench {secrets.token_hex(3)}", "type": "cva"}, user)
        db.session.commit()
        print(json.dumps({"project_id": project.id}), flush=True)
        db.session.remove()
        db.engine.dispose()
    app.extensions["dramatiq_broker"].close()


# --------------------------------------------------------------------------- the run


def _cookie_header(http) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


async def measure(args, web, env, email, password, project_id, redis_url) -> dict:
    import socketio

    cookies = [
        _cookie_header(stack.sign_in(web.base_url, email, password)) for _ in range(SESSIONS)
    ]
    bench = Bench(web.base_url, project_id, cookies)
    worker_pid = _gunicorn_worker(web.pid)
    emitter = socketio.RedisManager(redis_url, channel=env["SOCKETIO_CHANNEL"], write_only=True)
    room = f"dashboard:{project_id}"
    levels = []
    seq = 0
    try:
        for level in args.levels:
            opened_at = time.monotonic()
            connected = await bench.grow_to(level, args.connect_batch)
            open_seconds = time.monotonic() - opened_at
            await asyncio.sleep(1)  # let the subscriptions' snapshot queries settle
            cpu0, _ = _proc_stat(worker_pid)
            client0 = time.process_time()
            wall0 = time.monotonic()
            seconds = args.broadcasts / args.rate
            pages = subprocess.Popen(
                [sys.executable, __file__, "--pages", web.base_url, email, password,
                 str(project_id), str(seconds)],
                env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            latencies, delivered = await broadcast_level(
                bench, emitter, room, args.broadcasts, args.rate, seq
            )
            seq += args.broadcasts
            out, err = await asyncio.get_running_loop().run_in_executor(
                None, pages.communicate, None, seconds + 120
            )
            if pages.returncode != 0:
                raise RuntimeError(f"the page fetcher failed:\n{err[-2000:]}")
            page_result = json.loads(out.strip().splitlines()[-1])
            wall = time.monotonic() - wall0
            cpu1, rss = _proc_stat(worker_pid)
            client_cpu = time.process_time() - client0
            levels.append(
                {
                    "sockets": level,
                    "connected": bench.connected(),
                    "connected_at_open": connected,
                    "open_seconds": round(open_seconds, 1),
                    "broadcasts": args.broadcasts,
                    "broadcast": summary(latencies),
                    "delivered_share": None if delivered is None else round(delivered, 4),
                    "pages": {**summary(page_result["timings"]), "errors": page_result["errors"]},
                    "web_worker_rss_mb": round(rss / 2**20, 1),
                    "web_worker_cpu_share": round((cpu1 - cpu0) / wall, 2),
                    "client_cpu_share": round(client_cpu / wall, 2),
                    "load_1min": round(os.getloadavg()[0], 2),
                    "failures": bench.failures(),
                }
            )
            print(f"  level {level}: {json.dumps(levels[-1])}", file=sys.stderr, flush=True)
    finally:
        await bench.close()
    return {"levels": levels, "snapshot_bytes": len(json.dumps(bench.snapshot or {}))}


def run(args) -> dict:
    cleanup: list = []
    result: dict = {
        "levels_requested": args.levels,
        "broadcast_rate_per_s": args.rate,
        "target": {"sockets": 2000, "broadcast_p95_ms": TARGET_BROADCAST_P95_MS,
                   "page_p95_ms": TARGET_PAGE_P95_MS},
        "cpus": os.cpu_count(),
        "load_before": _common.load_average(),
        "web_command": stack.procfile()["web"],
    }  # fmt: skip
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = max(args.levels) + 1024
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
        redis_service = services.find_or_start_redis()
        cleanup.append(redis_service.stop)
        redis_db = services.claim_redis_db(redis_service.url)
        cleanup.append(redis_db.release)
        pg = services.find_or_start_postgres()
        cleanup.append(pg.stop)
        name = pg.create_database("portal_bench_sockets")
        cleanup.append(lambda: pg.drop_database(name))
        workdir = Path(tempfile.mkdtemp(prefix="portal-bench-sockets-"))
        if not args.keep_logs:
            cleanup.append(lambda: shutil.rmtree(workdir, ignore_errors=True))
        else:
            result["logs"] = str(workdir)

        from tests.support.anvil import Anvil

        anvil = Anvil(log_dir=workdir).start()
        cleanup.append(anvil.stop)
        anvil.wait_ready()

        env = stack.portal_env(
            database_url=pg.sqlalchemy_url(name),
            redis_url=redis_db.url,
            instance_dir=workdir / "instance",
            secrets=services.make_secrets(),
            WEB3_PROVIDER_URI=anvil.url,
            # Its own channel: other runs on this Redis do not reach these sockets.
            SOCKETIO_CHANNEL=f"portal-bench-{secrets.token_hex(4)}",
        )
        stack.run_procfile_release(env)
        email, password = f"bench-{secrets.token_hex(4)}@example.org", secrets.token_urlsafe(16)
        stack.create_user(env, email, password, role="admin")
        setup = subprocess.run(
            [sys.executable, __file__, "--setup", email],
            env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        if setup.returncode != 0:
            raise RuntimeError(f"setup failed:\n{setup.stderr[-3000:]}")
        project_id = json.loads(setup.stdout.strip().splitlines()[-1])["project_id"]

        web = stack.ProcfileProcess("web", env, workdir).start()
        cleanup.append(web.stop)
        web.wait_ready()

        measured = asyncio.run(measure(args, web, env, email, password, project_id, redis_db.url))
        result.update(measured)
        count = args.broadcasts * 10
        result["redis_pubsub"] = summary(
            _common.redis_publish_subscribe(
                redis_db.url, count, args.rate * 5, result["snapshot_bytes"]
            )
        )
        top = next((lv for lv in result["levels"] if lv["sockets"] == 2000), None)
        result["target_met"] = bool(
            top
            and top["connected"] >= 2000
            and top["broadcast"]["p95_ms"] is not None
            and top["broadcast"]["p95_ms"] < TARGET_BROADCAST_P95_MS
            and top["delivered_share"] >= 0.999
            and top["pages"]["p95_ms"] < TARGET_PAGE_P95_MS
            and top["pages"]["errors"] == 0
        )
        result["load_after"] = _common.load_average()
        return result
    finally:
        _common.clean_up(cleanup)


def print_table(result: dict) -> None:
    def f(v):
        return "-" if v is None else f"{v:.0f}"

    print()
    print(f"Live dashboards on `{result['web_command']}`")
    print(
        f"  {result['cpus']} CPUs; load average before {result['load_before']}, "
        f"after {result.get('load_after')}; broadcasts at {result['broadcast_rate_per_s']}/s; "
        f"snapshot {result.get('snapshot_bytes')} bytes"
    )
    print(
        f"  {'sockets':>7} {'conn':>5} {'bc p50':>7} {'bc p95':>7} {'bc max':>7} {'deliv':>6} "
        f"{'page p95':>8} {'errs':>4} {'RSS MB':>7} {'web CPU':>7} {'client CPU':>10} {'load':>6}"
    )
    for lv in result["levels"]:
        b, p = lv["broadcast"], lv["pages"]
        share = "-" if lv["delivered_share"] is None else f"{lv['delivered_share']:.3f}"
        print(
            f"  {lv['sockets']:>7} {lv['connected']:>5} {f(b['p50_ms']):>7} {f(b['p95_ms']):>7} "
            f"{f(b['max_ms']):>7} {share:>6} {f(p['p95_ms']):>8} "
            f"{p['errors']:>4} {lv['web_worker_rss_mb']:>7} {lv['web_worker_cpu_share']:>7} "
            f"{lv['client_cpu_share']:>10} {lv['load_1min']:>6}"
        )
    r = result["redis_pubsub"]
    print(f"  raw Redis PUBLISH -> SUBSCRIBE: p50 {r['p50_ms']:.2f} ms, p95 {r['p95_ms']:.2f} ms")
    print(f"  target (2,000 sockets, broadcast p95 < 1 s, page p95 < 200 ms): "
          f"{'met' if result['target_met'] else 'MISSED'}")  # fmt: skip
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--levels",
        default="0,500,1000,2000",
        help="socket counts, ascending; 0 is the baseline: pages while no socket is open",
    )
    parser.add_argument("--broadcasts", type=int, default=30, help="broadcasts per level")
    parser.add_argument("--rate", type=float, default=2.0, help="broadcasts per second")
    # Sockets connecting at once. Each connect loads the session's user; at most once a minute
    # per session that also touches the session row on a second connection (until the
    # no-second-connection change lands), so batches at or above the pool size (15) can
    # deadlock the pool for its 30 s timeout. 10 stays below it.
    parser.add_argument("--connect-batch", type=int, default=10)
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--pages", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--setup", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pages:
        base, email, password, project_id, seconds = args.pages
        fetch_pages(base, email, password, int(project_id), float(seconds))
        return 0
    if args.setup:
        setup_portal(args.setup)
        return 0
    args.levels = sorted(int(x) for x in args.levels.split(","))
    result = run(args)
    return _common.finish(result, print_table, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())

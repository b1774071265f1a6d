#!/usr/bin/env python3
"""Vendors charging at once: from code entry to "confirmed" on each vendor's socket.

What runs, as the README's production set-up: anvil, a fresh PostgreSQL database, Redis, and the
Procfile's ``release``, ``web`` and ``worker`` commands as separate processes. This process
prepares a deployed, funded project with 20 vendors (each with people of its own, allocated
through the services; the worker process runs the chain jobs), then plays every vendor's phone
at once, one thread each: sign in with the SMS code (read from the development outbox), open the
vendor's Socket.IO connection, and in a loop charge one of its people by phone number, read the
code the person received, submit it, and wait on its socket for that redemption's "confirmed"
(settled on chain). The time measured is code entry (the POST of the code) to that event.

Baseline, same run, same node: a plain ERC-20 transfer sent straight to anvil and its receipt
awaited, one after another. Ends with one JSON line.

With ``--burst`` every vendor's code POST of a round leaves at the same moment (all 20 phones
wait for each other once their code has arrived). Each run also prints where the time of a
redemption goes (``bench/_redeem_stages.py``).

    .venv/bin/python bench/redeem.py [--vendors 20] [--per-vendor 10] [--people 5] [--burst]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import random
import re
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import _common  # noqa: E402
import _data  # noqa: E402  (bench/ is this script's folder)
import _day_seed  # noqa: E402
import _redeem_stages  # noqa: E402
import _services  # noqa: E402
import _stacks  # noqa: E402
import _statements  # noqa: E402

from tests.support import stack  # noqa: E402
from tests.support.anvil import DEV_KEY  # noqa: E402

CODE = re.compile(r"\b(\d{6})\b")
# "123456 is your code to pay NPR 1.07 at Bench Shop 03. ..." (the amount in the project's
# currency, whichever side its symbol stands and whatever space the locale puts beside it)
PAYS = re.compile(r"pay \D*?([\d,]+\.\d+)\D*? at (Bench Shop \d+)\. ")
HIGH = "100000 per minute"  # vendors charging as fast as they can: lift the per-vendor limits


def shop_name(n: int) -> str:
    return f"Bench Shop {n:02d}"


def shop_phone(n: int) -> str:
    return f"98058{n:05d}"


def wait_until(check, what: str, timeout: float = 180):
    return _day_seed.wait_until(check, what, timeout, every=0.05)


def newest_message_id() -> int:
    from sqlalchemy import func, select

    from portal.comms.models import OutboxMessage
    from portal.extensions import db

    db.session.rollback()
    return db.session.scalar(select(func.coalesce(func.max(OutboxMessage.id), 0)))


def read_code(purpose: str, after: int) -> str:
    from sqlalchemy import select

    from portal.comms.models import OutboxMessage
    from portal.extensions import db

    def found():
        message = db.session.scalar(
            select(OutboxMessage)
            .where(OutboxMessage.purpose == purpose, OutboxMessage.id > after)
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )
        return message and message.body and CODE.search(message.body).group(1)

    return wait_until(found, f"a {purpose} code")


def prepare(vendors_n: int, people_per_vendor: int) -> tuple[int, list[list[str]]]:
    """A deployed, funded project; vendors; people allocated. Returns the project id and each
    vendor's people's phone numbers."""
    from sqlalchemy import select

    from portal.accounts.models import User
    from portal.extensions import db

    admin = db.session.scalar(select(User).limit(1))
    phones = [_data.phone_of(i) for i in range(vendors_n * people_per_vendor)]
    pid, _ = _day_seed.allocated_project(
        admin,
        name="Redeem bench",
        label="Bench",
        symbol="RDM",
        phones=phones,
        shops=[(shop_name(n), shop_phone(n)) for n in range(vendors_n)],
        amount_each=100_000,
        timeout=180,
        every=0.05,
    )
    per_vendor = [
        phones[n * people_per_vendor : (n + 1) * people_per_vendor] for n in range(vendors_n)
    ]
    return pid, per_vendor


def post(http, url: str, data: dict, token: str):
    reply = http.post(url, data={**data, "csrf_token": token}, allow_redirects=False, timeout=30)
    if reply.status_code not in (302, 303):
        raise RuntimeError(f"POST {url} gave {reply.status_code}: {reply.text[:400]}")
    return reply.headers["Location"]


def vendor_session(base: str, phone: str):
    import requests

    http = requests.Session()
    token = stack.scrape_csrf(http.get(f"{base}/vendor/sign-in", timeout=10).text)
    last = newest_message_id()
    post(http, f"{base}/vendor/sign-in", {"phone": phone}, token)
    page = http.get(f"{base}/vendor/sign-in/code", timeout=10).text
    post(
        http,
        f"{base}/vendor/sign-in/code",
        {"code": read_code("vendor.sign_in", last)},
        stack.scrape_csrf(page),
    )
    return http


class CodeReader(threading.Thread):
    """Reads the beneficiaries' code messages as they arrive and hands each code, with the
    amount it pays, to the vendor it names (the message says where the person pays)."""

    def __init__(self, app, shops: list[str]):
        super().__init__(daemon=True, name="code-reader")
        self.app = app
        self.codes = {shop: queue.Queue() for shop in shops}
        self.stopping = threading.Event()
        self.after = 0

    def run(self) -> None:
        from sqlalchemy import select

        from portal.comms.models import OutboxMessage
        from portal.extensions import db

        with self.app.app_context():
            self.after = newest_message_id()
            seen: set[int] = set()
            while not self.stopping.is_set():
                db.session.rollback()
                # Rows commit out of id order (concurrent charges): look back a window of ids
                # rather than only past the highest seen, and skip the ones already read.
                found = db.session.scalars(
                    select(OutboxMessage)
                    .where(
                        OutboxMessage.purpose == "redemption.code",
                        OutboxMessage.id > max(self.after - 500, 0),
                        OutboxMessage.id.not_in(seen) if seen else True,
                    )
                    .order_by(OutboxMessage.id)
                ).all()
                for message in found:
                    seen.add(message.id)
                    self.after = max(self.after, message.id)
                    body = message.body or ""
                    pays, code = PAYS.search(body), CODE.search(body)
                    if pays and code and pays.group(2) in self.codes:
                        amount = pays.group(1).replace(",", "")
                        self.codes[pays.group(2)].put((amount, code.group(1)))
                time.sleep(0.01)
            db.session.remove()


class Phone(threading.Thread):
    """One vendor's phone: its session, its socket, its people; charges one after another."""

    def __init__(
        self,
        base,
        http,
        shop,
        phones,
        project_id,
        charges,
        reader,
        start_gate,
        pause=0,
        burst: threading.Barrier | None = None,
        mean_gap: float | None = None,
        seed: int = 0,
    ):
        super().__init__(daemon=True, name=shop)
        self.base, self.http, self.shop, self.phones = base, http, shop, phones
        self.project_id, self.charges, self.reader = project_id, charges, reader
        self.start_gate = start_gate
        self.pause = pause
        # All phones wait here with their code in hand, then post it at the same moment.
        self.burst = burst
        # Poisson arrivals: a customer comes to this shop every exponential gap on average
        # ``mean_gap`` s, whether or not the previous charge has finished (it then waits).
        self.mean_gap = mean_gap
        self.random = random.Random(seed)
        self.at_barrier = False
        self.samples: list[_redeem_stages.Sample] = []
        self.warm_up = False
        self.events: queue.Queue = queue.Queue()
        self.seconds: list[float] = []
        self.post_seconds: list[float] = []
        self.statuses: dict[str, int] = {}
        self.errors: list[str] = []
        self.sio = None

    def connect(self) -> None:
        import socketio

        self.sio = socketio.Client(reconnection=False, http_session=self.http, handle_sigint=False)
        self.sio.on("redemption.updated", lambda data: self.events.put((time.perf_counter(), data)))
        self.sio.connect(self.base, transports=["websocket"], wait_timeout=10)
        ack = self.sio.call("subscribe", {"topic": "redemptions"}, timeout=10)
        if not ack.get("ok"):
            raise RuntimeError(f"subscribe refused: {ack}")
        self.token = stack.scrape_csrf(self.http.get(f"{self.base}/vendor/charge", timeout=10).text)

    def code_for(self, amount: str) -> str:
        """This charge's code: one left by an earlier charge that timed out is skipped."""
        deadline = time.monotonic() + 60
        while True:
            try:
                pays, code = self.reader.codes[self.shop].get(
                    timeout=max(deadline - time.monotonic(), 0.01)
                )
            except queue.Empty:
                raise TimeoutError(f"no code message for a charge of {amount}") from None
            if pays == amount:
                return code

    def charge_once(self, n: int) -> None:
        # A different amount each time (1.01 to 1.99; 1.00 is the warm-up's) ties the code
        # message to this charge.
        amount = "1.00" if self.warm_up else f"1.{n % 99 + 1:02d}"
        where = post(
            self.http,
            f"{self.base}/vendor/charge",
            {
                "project_id": self.project_id,
                "phone": self.phones[n % len(self.phones)],
                "amount": amount,
                "card": "",
            },
            self.token,
        )
        redemption_id = int(re.search(r"/payments/(\d+)/code", where).group(1))
        code = self.code_for(amount)
        if self.burst is not None:
            self.at_barrier = True
            self.burst.wait(120)
        started, posted = time.perf_counter(), time.time()
        post(
            self.http,
            f"{self.base}/vendor/payments/{redemption_id}/code",
            {"code": code},
            self.token,
        )
        answered = time.time()
        self.post_seconds.append(time.perf_counter() - started)
        deadline = time.monotonic() + 60
        while True:
            try:
                received, data = self.events.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise TimeoutError(f"redemption {redemption_id}: no final state in 60 s") from None
            if data.get("id") == redemption_id and data.get("final"):
                self.statuses[data["status"]] = self.statuses.get(data["status"], 0) + 1
                if data["status"] == "settled":
                    self.seconds.append(received - started)
                    confirmed = posted + (received - started)
                    self.samples.append(
                        _redeem_stages.Sample(redemption_id, posted, answered, confirmed)
                    )
                else:
                    self.errors.append(f"redemption {redemption_id} ended {data['status']}")
                return

    def run(self) -> None:
        self.start_gate.wait()
        arrives = time.monotonic()
        for n in range(self.charges):
            if self.mean_gap:
                arrives += self.random.expovariate(1.0 / self.mean_gap)
                time.sleep(max(arrives - time.monotonic(), 0))
            self.at_barrier = False
            try:
                self.charge_once(n)
            except Exception as exc:  # counted and reported: the bench goes on
                self.errors.append(f"{type(exc).__name__}: {exc} (charge {n})"[:300])
                if self.burst is not None and not self.at_barrier:
                    # Keep the others' round: they wait for this phone at the barrier.
                    with contextlib.suppress(threading.BrokenBarrierError):
                        self.burst.wait(120)
            if self.pause:
                time.sleep(self.pause)


def baseline(node_url: str, count: int) -> list[float]:
    from eth_account import Account
    from web3 import Web3

    from portal.chain import artifacts

    w3 = Web3(Web3.HTTPProvider(node_url))
    me = Account.from_key(DEV_KEY)
    factory = w3.eth.contract(
        abi=artifacts.abi("ProjectToken"), bytecode=artifacts.bytecode("ProjectToken")
    )
    made = w3.eth.wait_for_transaction_receipt(
        factory.constructor("Base", "BASE", 2, me.address).transact({"from": me.address})
    )
    token = w3.eth.contract(address=made.contractAddress, abi=artifacts.abi("ProjectToken"))
    w3.eth.wait_for_transaction_receipt(
        token.functions.mint(me.address, 10**12).transact({"from": me.address})
    )
    nonce = w3.eth.get_transaction_count(me.address)
    chain_id = w3.eth.chain_id
    seconds = []
    for i in range(count):
        tx = token.functions.transfer(Account.create().address, 100).build_transaction(
            {"from": me.address, "nonce": nonce + i, "chainId": chain_id, "gas": 80_000}
        )
        started = time.perf_counter()
        sent = w3.eth.send_raw_transaction(me.sign_transaction(tx).raw_transaction)
        w3.eth.wait_for_transaction_receipt(sent, poll_latency=0.01)
        seconds.append(time.perf_counter() - started)
    return seconds


def utcnow_naive():
    from portal.timeutil import utcnow

    return utcnow()


def _stacks_env(folder, args) -> dict:
    if not args.stacks:
        return {}
    found = _stacks.env(folder)
    if args.count_statements:  # one sitecustomize folder serves both
        found.pop("PYTHONPATH")
    return found


def load() -> dict:
    one, five, _ = os.getloadavg()
    return {"load1": round(one, 2), "load5": round(five, 2), "cpus": os.cpu_count()}


def run(args) -> dict:
    from config import Config
    from portal import create_app
    from portal.extensions import db

    result: dict = {
        "bench": "redeem",
        "vendors": args.vendors,
        "per_vendor": args.per_vendor,
        "pause_s": args.pause,
        "burst": args.burst,
        "arrivals": args.arrivals,
        "mean_gap_s": args.mean_gap if args.arrivals == "poisson" else None,
        "settings": args.env,
        "web": stack.procfile()["web"],
        "worker": stack.procfile()["worker"],
    }
    cleanup = []
    try:
        started = _services.start("redeem", cleanup, keep_logs=args.keep_logs)
        node, name, folder = started.node, started.database, started.folder
        keys, url = started.keys, started.url
        env = started.env(
            "redeem",
            VENDOR_CHARGE_LIMITS=HIGH,
            VENDOR_CODE_ENTRY_LIMIT=HIGH,
            VENDOR_SIGNIN_SMS_LIMITS=HIGH,
            VENDOR_CODE_IP_LIMIT=HIGH,
            BENEFICIARY_CODE_LIMITS=HIGH,
            BENEFICIARY_GUESS_LIMITS=HIGH,
            VENDOR_MAX_SESSIONS="1000",
            **(_statements.env(folder) if args.count_statements else {}),
            **_stacks_env(folder, args),
            **args.env,
        )
        stack.run_procfile_release(env)
        stack.create_user(env, "bench@example.org", "a-long-bench-password-9", role="admin")
        web, worker = _services.start_procfile(env, folder, cleanup)
        app = create_app(
            Config,
            role="worker",
            SQLALCHEMY_DATABASE_URI=url,
            REDIS_URL=started.redis_url,
            BROKER="redis",
            SECRET_KEY=keys["SECRET_KEY"],
            PII_KEY=keys["PII_KEY"],
            INSTANCE_DIR=str(folder / "bench-process"),
            RATELIMIT_STORAGE_URI="memory://",
            WEB3_PROVIDER_URI=node.url,
            CHAIN_TREASURY_KEY=env["CHAIN_TREASURY_KEY"],  # the stack's treasury
        )
        base = web.base_url
        shops = [shop_name(n) for n in range(args.vendors)]
        with app.app_context():
            project_id, people = prepare(args.vendors, args.people)
            sessions = [vendor_session(base, shop_phone(n)) for n in range(args.vendors)]
        reader = CodeReader(app, shops)
        reader.start()
        gate = threading.Event()
        phones = [
            Phone(base, sessions[n], shops[n], people[n], project_id, 1, reader, gate)
            for n in range(args.vendors)
        ]
        for phone in phones:
            phone.connect()
            phone.warm_up = True
        # One charge each first, not counted: each process's first redeem estimates its gas.
        for phone in phones:
            phone.start()
        gate.set()
        for phone in phones:
            phone.join(120)
        warm = [s for p in phones for s in p.seconds]
        warm_errors = [e for p in phones for e in p.errors]

        measured = []
        gate = threading.Event()
        burst = threading.Barrier(args.vendors) if args.burst else None
        for n, first in enumerate(phones):
            phone = Phone(
                base,
                sessions[n],
                shops[n],
                people[n],
                project_id,
                args.per_vendor,
                reader,
                gate,
                args.pause,
                burst,
                args.mean_gap if args.arrivals == "poisson" else None,
                args.seed * 1000 + n,
            )
            phone.sio, phone.events, phone.token = first.sio, first.events, first.token
            measured.append(phone)
        load_before = load()
        pids = {"web": web.pid, "worker": worker.pid, "anvil": node.pid}
        cpu_before = _redeem_stages.cpu_seconds(pids, name)
        if args.count_statements:
            time.sleep(0.3)  # the processes write their counts every 0.1 s
            statements_before = _statements.read(folder)
        if args.stacks:
            _stacks.start(folder)
        window_from = utcnow_naive()
        for phone in measured:
            phone.start()
        started = time.perf_counter()
        gate.set()
        for phone in measured:
            phone.join(600 + 3 * args.per_vendor * (args.mean_gap or 0))
        wall = time.perf_counter() - started
        window_to = utcnow_naive()
        if args.stacks:
            _stacks.stop(folder)
            time.sleep(0.5)
            result["worker_stacks"] = _stacks.by_frame(_stacks.read(folder), n=25)
            result["worker_stacks_top"] = _stacks.top(_stacks.read(folder), n=15)
        cpu_after = _redeem_stages.cpu_seconds(pids, name)
        load_after = load()
        if args.count_statements:
            time.sleep(0.3)
            result["statements_per_redemption"] = _statements.per_redemption(
                statements_before, _statements.read(folder), sum(len(p.seconds) for p in measured)
            )
        for phone in measured:
            phone.sio.disconnect()
        reader.stopping.set()
        reader.join(5)

        seconds = [s for p in measured for s in p.seconds]
        posts = [s for p in measured for s in p.post_seconds]
        statuses: dict[str, int] = {}
        for phone in measured:
            for status, count in phone.statuses.items():
                statuses[status] = statuses.get(status, 0) + count
        errors = [e for p in measured for e in p.errors]
        result.update(
            statuses=statuses,
            errors=len(errors),
            error_samples=errors[:5],
            warmup_ms=_data.summary_ms(warm),
            warmup_errors=len(warm_errors),
            code_to_confirmed_ms=_data.summary_ms(seconds),
            code_post_ms=_data.summary_ms(posts),
            redemptions_per_s=round(len(seconds) / wall, 2) if wall else None,
            wall_s=round(wall, 2),
            load_before=load_before,
            load_after=load_after,
            cpu_ms_per_redemption=_redeem_stages.cpu_per_redemption(
                cpu_before, cpu_after, len(seconds)
            ),
        )
        with app.app_context():
            result["stages_ms"] = _redeem_stages.breakdown(
                [s for p in measured for s in p.samples], _data.summary_ms
            )
            result["jobs"] = _redeem_stages.jobs_by_kind(window_from, window_to, _data.summary_ms)
        base_seconds = baseline(node.url, args.baseline)
        result["baseline_transfer_ms"] = _data.summary_ms(base_seconds)
        result["ratio_p95"] = round(
            (result["code_to_confirmed_ms"]["p95_ms"] or 0)
            / result["baseline_transfer_ms"]["p95_ms"],
            2,
        )
        with app.app_context():
            db.session.remove()
        return result
    finally:
        _common.clean_up(cleanup)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vendors", type=int, default=20)
    parser.add_argument("--per-vendor", type=int, default=10)
    parser.add_argument("--people", type=int, default=5, help="people per vendor")
    parser.add_argument("--baseline", type=int, default=100, help="direct transfers")
    parser.add_argument(
        "--pause",
        type=float,
        default=0.0,
        help="seconds a vendor waits between charges (0: as fast as the portal answers)",
    )
    _common.add_env_option(parser)
    parser.add_argument(
        "--burst",
        action="store_true",
        help="every round, all vendors post their code at the same moment",
    )
    parser.add_argument(
        "--arrivals",
        choices=("lockstep", "poisson"),
        default="lockstep",
        help="lockstep: each vendor charges again as soon as (or --pause s after) the last is "
        "confirmed; poisson: customers come to each shop at random, every --mean-gap s on "
        "average (exponential gaps), and wait if the shop is still busy",
    )
    parser.add_argument(
        "--mean-gap", type=float, default=10.0, help="seconds between a shop's customers (poisson)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the arrivals")
    parser.add_argument(
        "--stacks",
        action="store_true",
        help="sample the worker threads' stacks during the measured window",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    parser.add_argument(
        "--count-statements",
        action="store_true",
        help="count the SQL statements of the web and worker processes per redemption",
    )
    args = parser.parse_args()
    args.env = _common.env_settings(args.env)
    r = run(args)
    c, b, p = r["code_to_confirmed_ms"], r["baseline_transfer_ms"], r["code_post_ms"]
    print(
        f"\n{r['vendors']} vendors charging at once, {r['per_vendor']} each, code entry → "
        f"confirmed on the vendor's socket (Procfile web and worker, PostgreSQL, Redis, anvil): "
        f"{r['statuses']}, {r['errors']} errors"
    )
    print(f"  portal     p50 {c['p50_ms']} ms   p95 {c['p95_ms']} ms   p99 {c['p99_ms']} ms")
    print(f"  code POST  p50 {p['p50_ms']} ms   p95 {p['p95_ms']} ms (the request alone)")
    print(f"  first charge of each vendor (not counted): p95 {r['warmup_ms']['p95_ms']} ms")
    print(f"  {r['redemptions_per_s']} redemptions/s over {r['wall_s']} s")
    print(
        f"  baseline   p50 {b['p50_ms']} ms   p95 {b['p95_ms']} ms   (an ERC-20 transfer and its "
        "receipt, straight to the node, one at a time)"
    )
    print(f"  ratio of p95s {r['ratio_p95']}")
    print(f"  machine load before {r['load_before']}, after {r['load_after']}")
    _redeem_stages.print_table(r["stages_ms"])
    _redeem_stages.print_jobs(r["jobs"])
    print(f"  CPU per redemption (ms, all the process's children): {r['cpu_ms_per_redemption']}")
    if "statements_per_redemption" in r:
        print(f"  SQL statements per redemption: {r['statements_per_redemption']}")
    if "worker_stacks" in r:
        print("  worker threads' time (sampled stacks), by function anywhere on the stack:")
        for share, frame in r["worker_stacks"]:
            print(f"    {share:5.1f} %  {frame}")
        print("  commonest whole stacks:")
        for share, stack in r["worker_stacks_top"]:
            print(f"    {share:5.1f} %  {stack[-260:]}")
    _common.print_json_line(r)
    total = r["vendors"] * r["per_vendor"]
    return 0 if r["statuses"].get("settled") == total and r["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

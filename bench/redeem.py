#!/usr/bin/env python3
"""200 redemptions on a vendor's session: from code entry to "confirmed" on the vendor's page.

What runs: anvil, a fresh PostgreSQL database, Redis, the web server (``flask serve
--no-workers``) and a separate Dramatiq worker process (``dramatiq workers.main``), as in
production. This process prepares a deployed, funded project with people allocated (through the
services; the worker process runs the chain jobs), then acts as the vendor's phone: signs in with
the SMS code (read from the development outbox), and for each redemption charges a person by phone
number, reads the code the person received, submits it, and waits on the vendor's Socket.IO
connection for that redemption's "confirmed" (settled on chain) — what the receipt page shows.

Baseline, same run, same node: a plain ERC-20 transfer sent straight to anvil and its receipt
awaited. The ratio shows what the portal adds (the code check, the reservation, the job, the
signed-and-stored transaction, the receipt follow-up, the live push). Ends with one JSON line.

    .venv/bin/python bench/redeem.py [--redemptions 200] [--people 50]
"""

from __future__ import annotations

import argparse
import json
import queue
import re
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import _data  # noqa: E402  (bench/ is this script's folder)

from tests.support import services, stack  # noqa: E402
from tests.support.anvil import DEV_KEY, Anvil  # noqa: E402

VENDOR_PHONE = "9805800001"
CODE = re.compile(r"\b(\d{6})\b")
HIGH = "100000 per minute"  # the bench is one vendor charging fast: lift the per-vendor limits


def wait_until(check, what: str, timeout: float = 120):
    from portal.extensions import db

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


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


def prepare(people: int) -> list[str]:
    from sqlalchemy import select

    from portal.accounts.models import User
    from portal.beneficiaries import groups
    from portal.beneficiaries import services as beneficiaries
    from portal.chain import setup
    from portal.disbursements import services as disbursements
    from portal.disbursements.models import Disbursement
    from portal.extensions import db
    from portal.projects import services as projects
    from portal.projects.models import Project
    from portal.vendors import services as vendors

    admin = db.session.scalar(select(User).limit(1))
    project = projects.create({"name": "Redeem bench", "type": "cva"}, admin)
    projects.change_status(project, "active")
    phones = [_data.phone_of(i) for i in range(people)]
    persons = [
        beneficiaries.create({"name": f"Person {i}", "phone": p}, project=project)
        for i, p in enumerate(phones)
    ]
    group = groups.create(project, "Bench", "redemptions")
    groups.add_members(group, persons)
    shop = vendors.register(
        {
            "name": "Bench Grocers",
            "phone": VENDOR_PHONE,
            "category": "shop",
            "contact_name": "Owner",
        },
        project=project,
    )
    vendors.change_status(shop, "approved")
    setup.start_deploy(project, "RDM", 2, None)
    db.session.commit()
    pid = project.id
    wait_until(lambda: setup.state(pid).status == "deployed", "deployment")
    setup.start_funding(db.session.get(Project, pid), 100_000 * people, "bench", None)
    db.session.commit()
    wait_until(lambda: setup.state(pid).funded > 0, "funding")
    d, _ = disbursements.create(
        db.session.get(Project, pid),
        title="Bench",
        amount=100_000,
        group_id=group.id,
        beneficiary_ids=None,
        batch_size=500,
        user_id=None,
    )
    disbursements.start(d, None)
    db.session.commit()
    did = d.id
    wait_until(lambda: db.session.get(Disbursement, did).status == "completed", "allocation")
    return phones


def post(http, url: str, data: dict, token: str):
    reply = http.post(url, data={**data, "csrf_token": token}, allow_redirects=False, timeout=30)
    if reply.status_code not in (302, 303):
        raise RuntimeError(f"POST {url} gave {reply.status_code}: {reply.text[:400]}")
    return reply.headers["Location"]


def vendor_session(base: str):
    import requests

    http = requests.Session()
    token = stack.scrape_csrf(http.get(f"{base}/vendor/sign-in", timeout=10).text)
    last = newest_message_id()
    post(http, f"{base}/vendor/sign-in", {"phone": VENDOR_PHONE}, token)
    page = http.get(f"{base}/vendor/sign-in/code", timeout=10).text
    post(
        http,
        f"{base}/vendor/sign-in/code",
        {"code": read_code("vendor.sign_in", last)},
        stack.scrape_csrf(page),
    )
    return http


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


def run(args) -> dict:
    import socketio

    from config import Config
    from portal import create_app
    from portal.extensions import db

    result: dict = {"bench": "redeem", "redemptions": args.redemptions}
    cleanup = []
    try:
        node = Anvil()
        node.start()
        cleanup.append(node.stop)
        node.wait_ready()
        pg = services.find_or_start_postgres()
        cleanup.append(pg.stop)
        name = pg.create_database("portal_bench_redeem")
        cleanup.append(lambda: pg.drop_database(name))
        redis_service = services.find_or_start_redis()
        cleanup.append(redis_service.stop)
        claimed = services.claim_redis_db(redis_service.url)
        cleanup.append(claimed.release)
        folder = Path(tempfile.mkdtemp(prefix="portal-bench-redeem-"))
        cleanup.append(lambda: shutil.rmtree(folder, ignore_errors=True))
        keys = services.make_secrets()
        url = pg.sqlalchemy_url(name)
        env = stack.portal_env(
            database_url=url,
            redis_url=claimed.url,
            instance_dir=folder / "instance",
            secrets=keys,
            WEB3_PROVIDER_URI=node.url,
            CHAIN_FAUCET_KEY=DEV_KEY,
            SOCKETIO_CHANNEL=f"bench-redeem-{secrets.token_hex(4)}",
            VENDOR_CHARGE_LIMITS=HIGH,
            VENDOR_CODE_ENTRY_LIMIT=HIGH,
            VENDOR_SIGNIN_SMS_LIMITS=HIGH,
            VENDOR_CODE_IP_LIMIT=HIGH,
            BENEFICIARY_CODE_LIMITS=HIGH,
            BENEFICIARY_GUESS_LIMITS=HIGH,
            VENDOR_MAX_SESSIONS="1000",
        )
        stack.migrate(env)
        stack.create_user(env, "bench@example.org", "a-long-bench-password-9", role="admin")
        web = stack.WebServer(env, folder)
        worker = stack.Worker(env, folder, processes=1, threads=4)
        for proc in (web, worker):
            proc.start()
            cleanup.append(proc.stop)
        web.wait_ready()
        worker.wait_ready()
        app = create_app(
            Config,
            role="worker",
            SQLALCHEMY_DATABASE_URI=url,
            REDIS_URL=claimed.url,
            BROKER="redis",
            SECRET_KEY=keys["SECRET_KEY"],
            PII_KEY=keys["PII_KEY"],
            INSTANCE_DIR=str(folder / "bench-process"),
            RATELIMIT_STORAGE_URI="memory://",
            WEB3_PROVIDER_URI=node.url,
        )
        base = web.base_url
        with app.app_context():
            phones = prepare(args.people)
            from portal.chain.models import ProjectChain

            project_id = db.session.scalar(db.select(ProjectChain.project_id))
            http = vendor_session(base)
            events: queue.Queue = queue.Queue()
            sio = socketio.Client(reconnection=False, http_session=http, handle_sigint=False)
            sio.on("redemption.updated", lambda data: events.put((time.perf_counter(), data)))
            sio.connect(base, transports=["websocket"], wait_timeout=10)
            ack = sio.call("subscribe", {"topic": "redemptions"}, timeout=10)
            if not ack.get("ok"):
                raise RuntimeError(f"subscribe refused: {ack}")
            token = stack.scrape_csrf(http.get(f"{base}/vendor/charge", timeout=10).text)
            seconds, statuses = [], {}
            for n in range(args.redemptions):
                last = newest_message_id()
                where = post(
                    http,
                    f"{base}/vendor/charge",
                    {
                        "project_id": project_id,
                        "phone": phones[n % len(phones)],
                        "amount": "1",
                        "card": "",
                    },
                    token,
                )
                redemption_id = int(re.search(r"/payments/(\d+)/code", where).group(1))
                code = read_code("redemption.code", last)
                started = time.perf_counter()
                post(http, f"{base}/vendor/payments/{redemption_id}/code", {"code": code}, token)
                while True:
                    received, data = events.get(timeout=60)
                    if data.get("id") == redemption_id and data.get("final"):
                        statuses[data["status"]] = statuses.get(data["status"], 0) + 1
                        seconds.append(received - started)
                        break
            sio.disconnect()
            db.session.remove()
        result["statuses"] = statuses
        result["code_to_confirmed_ms"] = _data.summary_ms(seconds)
        base_seconds = baseline(node.url, args.redemptions)
        result["baseline_transfer_ms"] = _data.summary_ms(base_seconds)
        result["ratio_p95"] = round(
            result["code_to_confirmed_ms"]["p95_ms"] / result["baseline_transfer_ms"]["p95_ms"], 2
        )
        return result
    finally:
        for step in reversed(cleanup):
            try:
                step()
            except Exception as exc:
                print(f"cleanup: {exc}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redemptions", type=int, default=200)
    parser.add_argument("--people", type=int, default=50)
    r = run(parser.parse_args())
    c, b = r["code_to_confirmed_ms"], r["baseline_transfer_ms"]
    print(
        f"\n{r['redemptions']} redemptions, code entry → confirmed on the vendor's socket "
        f"(web and worker processes, PostgreSQL, Redis, anvil): {r['statuses']}"
    )
    print(f"  portal     p50 {c['p50_ms']} ms   p95 {c['p95_ms']} ms   p99 {c['p99_ms']} ms")
    print(
        f"  baseline   p50 {b['p50_ms']} ms   p95 {b['p95_ms']} ms   (an ERC-20 transfer and its "
        "receipt, straight to the node)"
    )
    print(f"  ratio of p95s {r['ratio_p95']}")
    print(json.dumps(r, sort_keys=True))
    return 0 if r["statuses"].get("settled") == r["redemptions"] else 1


if __name__ == "__main__":
    sys.exit(main())

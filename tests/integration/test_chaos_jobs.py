"""Chaos: Dramatiq worker processes killed with -9, Redis restarted without its data.

The production set-up as separate processes: the web server, Dramatiq workers, PostgreSQL, a
Redis of this module's own (no RDB, no AOF: a restart loses everything) and anvil. The job
settings are the defaults (lease 30 s, heartbeat 10 s, sweep every 15 s): what is measured is
what production gets.

- Two worker commands run; one is killed with -9 in the middle of a disbursement, the other
  finishes its jobs; then the survivor is killed with -9 in the middle of redemptions and a new
  one started. Each time everything is done within 2 minutes of the kill, and the chain holds
  exactly what the database says (entitlements, the contract's outstanding total, vendors'
  balances).
- Workers stopped, work queued, Redis killed and started again empty: once workers are back,
  every queued job is sent again (the sweeper finds their messages missing) and done within
  60 s plus the run time.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time

import pytest
import sqlalchemy as sa
from web3 import Web3

from portal.chain import artifacts
from tests.support import stack
from tests.support.anvil import DEV_KEY
from tests.support.services import ManagedProcess, free_port, start_redis_server
from tests.support.stack import post_form, wait_sql

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.pg_heavy]

EMAIL, PASSWORD = "chaos@example.org", "a-long-test-password-42"
APPROVER = "chaos-approver@example.org"  # funding and starts need a second person
KILL_DEADLINE = 120  # seconds from a kill -9 to everything done
REDIS_DEADLINE = 60  # seconds from Redis back (empty) to every lost job sent again


class OwnRedis:
    """A redis-server that keeps nothing on disk, on a port of its own, stopped by PID."""

    def __init__(self):
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix="chaos-redis-")
        self.proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc, _ = start_redis_server(self.workdir, port=self.port, name="chaos-redis")

    def kill(self) -> None:
        """Gone at once, with whatever it held (nothing is on disk)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(timeout=2)
        shutil.rmtree(self.workdir, ignore_errors=True)


class Stack:
    """The processes of one portal, and what the tests need to drive and check it."""

    def __init__(self, env, folder, engine, redis):
        self.env, self.folder, self.engine, self.redis = env, folder, engine, redis
        self.web = stack.WebServer(env, folder)
        self.workers: list[stack.Worker] = []

    def worker(self) -> stack.Worker:
        found = stack.Worker(self.env, self.folder, processes=1, threads=2)
        found.start()
        found.wait_ready()
        self.workers.append(found)
        return found

    def logs(self) -> str:
        with self.engine.connect() as conn:
            jobs = conn.execute(
                sa.text(
                    "select id, kind, status, attempts, lease_owner, lease_expires_at, error "
                    "from jobs where status <> 'succeeded' order by id"
                )
            ).all()
        tails = "\n".join(f"--- worker {w.pid}\n{w.log_tail(30)}" for w in self.workers)
        return (
            "\n--- jobs\n"
            + "\n".join(map(str, jobs))
            + f"\n{tails}\n--- web\n{self.web.log_tail(30)}"
        )

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop(timeout=2)
        self.web.stop(timeout=5)


@pytest.fixture(scope="module")
def portal(anvil_node, portal_secrets, database_factory, tmp_path_factory, app_factory):
    redis = OwnRedis()
    redis.start()
    url = database_factory("portal_chaos")
    folder = tmp_path_factory.mktemp("chaos-stack")
    env = stack.portal_env(
        database_url=url,
        redis_url=redis.url,
        instance_dir=folder / "instance",
        secrets=portal_secrets,
        WEB3_PROVIDER_URI=anvil_node.url,
        CHAIN_FAUCET_KEY=DEV_KEY,
        WORKER_THREADS="2",
        JOB_BACKOFF_BASE_MS="500",
    )
    stack.flask_cli(env, "seed-demo")
    stack.create_user(env, EMAIL, PASSWORD, role="admin")
    stack.create_user(env, APPROVER, PASSWORD, role="admin")
    engine = sa.create_engine(url, pool_size=2)
    portal = Stack(env, folder, engine, redis)
    # The in-process app charges as vendors do (the web's vendor pages need an SMS sign-in):
    # the same database, Redis and chain; its commits send job messages like the web's.
    portal.app = app_factory(
        url, REDIS_URL=redis.url, WEB3_PROVIDER_URI=anvil_node.url, CHAIN_FAUCET_KEY=DEV_KEY
    )
    try:
        portal.web.start()
        portal.web.wait_ready()
        portal.worker()
        base = portal.web.base_url
        portal.http = stack.sign_in(base, EMAIL, PASSWORD)
        with engine.connect() as conn:
            portal.project_id = conn.execute(sa.text("select min(id) from projects")).scalar()
        pid = portal.project_id
        post_form(
            portal.http, base, f"/projects/{pid}/chain/deploy", {"symbol": "KO", "decimals": 2}
        )
        wait_sql(engine, "select status from project_chains where project_id = :p", {"p": pid},
                 lambda s: s == "deployed", 90, "deployment", portal.logs)  # fmt: skip
        funding = {"amount": "100000", "confirmed": "yes"}
        post_form(portal.http, base, f"/projects/{pid}/chain/fund", funding)
        stack.approve_newest(base, APPROVER, PASSWORD, engine, "funding")
        wait_sql(engine, "select funded from project_chains where project_id = :p", {"p": pid},
                 lambda f: f == 10_000_000, 60, "funding", portal.logs)  # fmt: skip
        yield portal
    finally:
        portal.stop()
        redis.stop()
        engine.dispose()
        from portal.extensions import db

        with portal.app.app_context():
            db.engine.dispose()


def _disburse(portal, title: str, amount: str, batch_size: int) -> int:
    base, pid = portal.web.base_url, portal.project_id
    with portal.engine.connect() as conn:
        group_id = conn.execute(
            sa.text("select min(id) from beneficiary_groups where project_id = :p"), {"p": pid}
        ).scalar()
    made = post_form(
        portal.http,
        base,
        f"/projects/{pid}/disbursements/new",
        {"title": title, "amount": amount, "group_id": group_id, "batch_size": batch_size},
    )
    d_id = int(re.search(r"/disbursements/(\d+)", made.headers["Location"]).group(1))
    post_form(portal.http, base, f"/disbursements/{d_id}/start", {})
    stack.approve_newest(base, APPROVER, PASSWORD, portal.engine, "disbursement_start")
    return d_id


def _charge(portal, count: int, amount: int) -> list[int]:
    """``count`` redemptions started and confirmed by the demo's approved vendors."""
    from sqlalchemy import event

    from portal.beneficiaries.models import Beneficiary
    from portal.chain import setup
    from portal.comms.models import OutboxMessage
    from portal.disbursements.models import Entitlement
    from portal.extensions import db
    from portal.projects.models import Project
    from portal.redemptions import services as redemptions
    from portal.vendors.models import Vendor

    codes: list[str] = []

    def keep(mapper, connection, target):
        if target.purpose == "redemption.code":
            codes.append(re.search(r"\b(\d{6})\b", target.body).group(1))

    event.listen(OutboxMessage, "after_insert", keep)
    ids = []
    try:
        with portal.app.app_context():
            project = db.session.get(Project, portal.project_id)
            pc = setup.state(project.id)
            vendors = db.session.scalars(
                sa.select(Vendor).where(Vendor.status == "approved").order_by(Vendor.id)
            ).all()
            people = db.session.scalars(
                sa.select(Beneficiary)
                .join(Entitlement, Entitlement.beneficiary_id == Beneficiary.id)
                .where(Entitlement.project_id == project.id)
                .order_by(Beneficiary.id)
                .limit(count)
            ).all()
            assert len(people) == count
            for i, person in enumerate(people):
                vendor = vendors[i % len(vendors)]
                redemption = redemptions.start(vendor, project, pc, person, amount, "card")
                db.session.commit()
                result = redemptions.confirm(vendor, redemption.id, codes[-1])
                db.session.commit()
                assert result.outcome == "accepted", result
                ids.append(redemption.id)
            db.session.remove()
    finally:
        event.remove(OutboxMessage, "after_insert", keep)
    return ids


def _chain_equals_database(portal) -> None:
    """Entitlements, the contract's outstanding total and the vendors' balances."""
    from portal.chain import settlement, setup
    from portal.extensions import db

    with portal.app.app_context():
        pc = setup.state(portal.project_id)
        w3 = Web3(Web3.HTTPProvider(portal.env["WEB3_PROVIDER_URI"]))
        book = w3.eth.contract(address=pc.contract_address, abi=artifacts.abi("Entitlements"))
        with portal.engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "select address, allocated, redeemed from entitlements where project_id = :p"
                ),
                {"p": portal.project_id},
            ).all()
            paid = conn.execute(
                sa.text(
                    "select vendor_id, sum(amount) from redemptions where project_id = :p "
                    "and status = 'settled' group by vendor_id"
                ),
                {"p": portal.project_id},
            ).all()
        for address, allocated, redeemed in rows:
            assert book.functions.entitlementOf(address).call() == allocated - redeemed, address
        assert book.functions.outstanding().call() == sum(a - r for _, a, r in rows)
        for vendor_id, total in paid:
            # Version 2 keeps redeemed value in the contract; version 1 sent it to the vendor.
            on_chain = settlement.vendor_balance(portal.project_id, vendor_id)
            assert on_chain == total, (vendor_id, on_chain, total)
        db.session.remove()


def test_workers_killed_with_minus_nine_mid_disbursement_and_mid_redemption(portal):
    engine, logs = portal.engine, portal.logs
    survivor = portal.worker()  # two worker commands now
    victim = portal.workers[0]

    # --- mid-disbursement: 20 people in batches of 2, one worker killed after the first
    d_id = _disburse(portal, "Chaos", "40", batch_size=2)
    wait_sql(engine, "select count(*) from disbursement_batches where disbursement_id = :d "
             "and status = 'confirmed'", {"d": d_id}, lambda n: n >= 1, 90, "a first batch",
             logs)  # fmt: skip
    stack.kill9(victim)
    killed_at = time.monotonic()
    wait_sql(engine, "select status from disbursements where id = :d", {"d": d_id},
             lambda s: s in ("completed", "failed"), KILL_DEADLINE, "the disbursement",
             logs)  # fmt: skip
    recovered = time.monotonic() - killed_at
    with engine.connect() as conn:
        status = conn.execute(sa.text("select status from disbursements where id = :d"),
                              {"d": d_id}).scalar()  # fmt: skip
    assert status == "completed", logs()
    _chain_equals_database(portal)

    # --- mid-redemption: the survivor killed while transfers run, a new worker started
    ids = _charge(portal, 12, 500)
    wait_sql(engine, "select count(*) from redemptions where id = any(:ids) and status = 'settled'",
             {"ids": ids}, lambda n: n >= 1, 60, "a first transfer", logs)  # fmt: skip
    stack.kill9(survivor)
    killed_at = time.monotonic()
    portal.worker()
    wait_sql(engine, "select count(*) from redemptions where id = any(:ids) "
             "and status in ('settled', 'failed')", {"ids": ids}, lambda n: n == len(ids),
             KILL_DEADLINE, "every transfer", logs)  # fmt: skip
    with engine.connect() as conn:
        statuses = conn.execute(
            sa.text("select status, count(*) from redemptions where id = any(:ids) group by 1"),
            {"ids": ids},
        ).all()
    assert dict(statuses) == {"settled": len(ids)}, logs()
    wait_sql(engine, "select count(*) from jobs where status not in ('succeeded', 'cancelled')",
             {}, lambda n: n == 0, KILL_DEADLINE - (time.monotonic() - killed_at), "every job",
             logs)  # fmt: skip
    _chain_equals_database(portal)
    print(f"\nchaos: disbursement done {recovered:.0f} s after kill -9; "
          f"redemptions done {time.monotonic() - killed_at:.0f} s after kill -9")  # fmt: skip


def test_redis_restarted_without_its_data(portal):
    engine, logs = portal.engine, portal.logs
    for worker in portal.workers:
        worker.stop(timeout=5)  # work piles up in Redis while no worker runs
    portal.workers.clear()
    d_id = _disburse(portal, "Lost with Redis", "10", batch_size=4)
    ids = _charge(portal, 4, 300)
    with engine.connect() as conn:
        waiting = conn.execute(
            sa.text("select count(*) from jobs where status in ('queued', 'retrying')")
        ).scalar()
    assert waiting >= 5 + 4  # batch jobs, SMS and transfers

    portal.redis.kill()
    portal.redis.start()  # the same address, nothing in it
    back_at = time.monotonic()
    portal.worker()
    wait_sql(engine, "select status from disbursements where id = :d", {"d": d_id},
             lambda s: s == "completed", REDIS_DEADLINE + 60, "the disbursement", logs)  # fmt: skip
    wait_sql(engine, "select count(*) from redemptions where id = any(:ids) and status = 'settled'",
             {"ids": ids}, lambda n: n == len(ids), REDIS_DEADLINE + 60, "every transfer",
             logs)  # fmt: skip
    wait_sql(engine, "select count(*) from jobs where status not in ('succeeded', 'cancelled')",
             {}, lambda n: n == 0, REDIS_DEADLINE + 60, "every job", logs)  # fmt: skip
    took = time.monotonic() - back_at
    _chain_equals_database(portal)
    print(f"\nchaos: every job lost with Redis done {took:.0f} s after it came back empty")

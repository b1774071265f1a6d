"""Chaos on the settlement path: the worker killed with -9 mid-settlement, callbacks lost.

The portal as separate processes (web and Dramatiq worker on PostgreSQL and Redis), an anvil of
this module's own (so that mining can be held without touching other tests' node) and the local
mobile-money server (``tests/support/momo_server.py``), which the web process hears back from.
Job leases are short here (6 s, sweep every 2 s) so that the recovery fits in the test's time;
the mechanism is the production one.

- (a) Settlements approved while the node holds its blocks: the burns wait in the mempool and
  the worker following them is killed with -9; blocks resume, a new worker starts with the
  provider answering its first transfer request late (accepted, then silent), and that worker is
  killed with -9 in the middle of the request. A third worker finishes: every settlement is paid
  exactly once — one burn each on chain (one ``Settled`` log per settlement id), one transfer
  each at the provider (the retry carried the same ``X-Reference-Id`` and got 409), one payout
  each in the database — ``ledger-verify`` finds no mismatch and each vendor's balance on chain
  is what it redeemed less what was settled.
- (b) The provider's callbacks are lost: the status query (the payout's delayed check and the
  sweeper, after ``PAYOUT_CHECK_AFTER_SECONDS``) finds the final status in time; a success is
  paid, a failure becomes "payment failed" with the provider's reason, its burned amount is not
  offered again as a new cash-out but is owed again (``ledger-verify`` counts it), and
  finance's retry pays it with no second burn, once the provider confirmed the first try failed.
- (c) A payout recorded failed is reported paid after all (the provider changes its answer and
  calls back): the callback is checked with the status query, the settlement is paid by that
  first try, nothing is owed again and no second try is made.
"""

from __future__ import annotations

import shutil
import time

import pytest
import sqlalchemy as sa
from web3 import Web3

from tests.support import settlement_world, stack
from tests.support.anvil import DEV_KEY, Anvil
from tests.support.momo_server import FakeMomo
from tests.support.services import Unavailable, free_port
from tests.support.stack import wait_sql

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.pg_heavy]

PASSWORD = "a-long-test-password-42"
FINANCE, APPROVER = "finance@example.org", "approver@example.org"
BALANCE = 100_000  # each vendor's, base units
CASH_OUT = 30_000
CHECK_AFTER = 4  # PAYOUT_CHECK_AFTER_SECONDS
RECOVERY = 90  # seconds from the last kill -9 to everything paid
SETTLED_TOPIC = "0x" + Web3.keccak(text="Settled(bytes32,address,uint256)").hex().removeprefix("0x")


class Portal:
    def __init__(self, env, folder, engine, node, momo, app, web_port: int):
        self.env, self.folder, self.engine = env, folder, engine
        self.node, self.momo, self.app = node, momo, app
        self.web = stack.WebServer(env, folder, port=web_port)  # the callbacks' address
        self.workers: list[stack.Worker] = []

    def worker(self) -> stack.Worker:
        found = stack.Worker(self.env, self.folder, processes=1, threads=2)
        found.start()
        found.wait_ready()
        self.workers.append(found)
        return found

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def logs(self) -> str:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.text("select id, status, payout_id, failure_reason from settlements order by id")
            ).all()
            jobs = conn.execute(
                sa.text(
                    "select id, kind, status, attempts, error from jobs "
                    "where status <> 'succeeded' order by id"
                )
            ).all()
        tails = "\n".join(f"--- worker {w.pid}\n{w.log_tail(30)}" for w in self.workers)
        return (
            f"\n--- settlements\n{rows}\n--- jobs\n{jobs}\n--- provider posts "
            f"{self.momo.transfer_posts}\n{tails}\n--- web\n{self.web.log_tail(30)}"
        )

    def wait(self, sql: str, until, timeout: float, what: str, **params):
        return wait_sql(self.engine, sql, params, until, timeout, what, self.logs)

    def approve(self, settlement_ids: list[int]) -> None:
        """The approver decides each through the web's form (the web signs the burn)."""
        http = stack.sign_in(self.web.base_url, APPROVER, PASSWORD)
        token = stack.fresh_csrf(http, self.web.base_url)
        for sid in settlement_ids:
            rid = self.scalar("select approval_id from settlements where id = :s", s=sid)
            reply = http.post(
                f"{self.web.base_url}/approvals/{rid}/decide",
                data={f"r{rid}-decision": "approve", f"r{rid}-reason": "", "csrf_token": token},
                allow_redirects=False,
                timeout=30,
            )
            assert reply.status_code == 302, (sid, reply.status_code, reply.text[:500])

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop(timeout=2)
        self.web.stop(timeout=5)


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, database_factory, tmp_path_factory, app_factory):
    folder = tmp_path_factory.mktemp("settle-chaos")
    try:
        node = Anvil(log_dir=folder)
    except Unavailable as exc:
        pytest.skip(str(exc))
    node.start()
    momo = FakeMomo()
    momo.__enter__()
    url = database_factory("portal_settle_chaos")
    web_port = free_port()
    env = stack.portal_env(
        database_url=url,
        redis_url=redis_db.url,
        instance_dir=folder / "instance",
        secrets=portal_secrets,
        WEB3_PROVIDER_URI=node.url,
        CHAIN_FAUCET_KEY=DEV_KEY,
        WORKER_THREADS="2",
        JOB_LEASE_SECONDS="6",
        JOB_HEARTBEAT_SECONDS="2",
        SWEEP_INTERVAL_SECONDS="2",
        JOB_BACKOFF_BASE_MS="300",
        CHAIN_RECEIPT_WAIT_SECONDS="20",  # a follow-up waits long enough to be killed waiting
        PAYOUT_CHECK_AFTER_SECONDS=str(CHECK_AFTER),
        MOMO_BASE_URL=momo.url,
        MOMO_CALLBACK_BASE_URL=f"http://127.0.0.1:{web_port}",
        MOMO_API_USER=momo.api_user,
        MOMO_API_KEY=momo.api_key,
        MOMO_SUBSCRIPTION_KEY=momo.subscription_key,
        MOMO_TIMEOUT_SECONDS="10",
        OUTBOUND_PRIVATE_HOSTS="127.0.0.1",
    )
    stack.create_user(env, FINANCE, PASSWORD, role="admin")
    stack.create_user(env, APPROVER, PASSWORD, role="admin")
    engine = sa.create_engine(url, pool_size=2)
    app = app_factory(
        url,
        WEB3_PROVIDER_URI=node.url,
        CHAIN_FAUCET_KEY=DEV_KEY,
        CHAIN_TREASURY_KEY=env["CHAIN_TREASURY_KEY"],  # the stack's treasury
    )
    portal = Portal(env, folder, engine, node, momo, app, web_port)
    try:
        node.wait_ready()
        portal.web.start()
        portal.web.wait_ready()
        portal.worker()
        with app.app_context():
            from portal.extensions import db

            portal.world = settlement_world.make(vendors=6, amount=BALANCE, timeout=120)
            db.session.remove()
        yield portal
    finally:
        portal.stop()
        momo.__exit__(None, None, None)
        node.stop()
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def _ask(portal, vendor_ids: list[int]) -> list[int]:
    """One cash-out of CASH_OUT per vendor, as the vendor's phone asks."""
    from portal.extensions import db
    from portal.projects.models import Project
    from portal.settlements import services

    ids = []
    with portal.app.app_context():
        for vendor_id in vendor_ids:
            project = db.session.get(Project, portal.world.project_id)
            row = services.request(project, vendor_id, CASH_OUT, method_id=None, by_vendor=True)
            db.session.commit()
            ids.append(row.id)
        db.session.remove()
    return ids


def _settled_logs(portal) -> list[tuple[str, int]]:
    """Every ``Settled`` log of the project's contract: (settlement id topic, amount)."""
    contract = portal.scalar(
        "select contract_address from project_chains where project_id = :p",
        p=portal.world.project_id,
    )
    logs = portal.node.rpc(
        "eth_getLogs",
        {"address": contract, "fromBlock": "0x0", "toBlock": "latest", "topics": [SETTLED_TOPIC]},
    )
    return [(log["topics"][1], int(log["data"], 16)) for log in logs]


def _books_agree_with_chain(portal) -> int:
    """``ledger-verify`` finds nothing and each vendor's balance is what the books say; what
    it reports owed again to vendors (burned, payout failed)."""
    from portal.chain import ledger_verify, settlement
    from portal.extensions import db

    with portal.app.app_context():
        result = ledger_verify.verify([portal.world.project_id])
        assert result.mismatches == 0, result.as_dict()
        owed_again = result.projects[0].owed_again
        for vendor_id in portal.world.vendor_ids:
            settled = portal.scalar(
                "select coalesce(sum(amount), 0) from settlements where vendor_id = :v and burned",
                v=vendor_id,
            )
            on_chain = settlement.vendor_balance(portal.world.project_id, vendor_id)
            assert on_chain == BALANCE - settled, (vendor_id, on_chain, settled)
        db.session.remove()
    return owed_again


def test_worker_killed_with_minus_nine_mid_burn_and_mid_payout_pays_each_once(portal):
    from portal.chain import addresses

    momo, node = portal.momo, portal.node
    vendors = portal.world.vendor_ids[:4]
    ids = _ask(portal, vendors)
    first = portal.workers[-1]

    # --- mid-burn: the node holds its blocks, the burns wait in the mempool
    node.rpc("evm_setAutomine", False)
    try:
        portal.approve(ids)
        portal.wait(
            "select count(*) from settlements s join chain_txs t on t.id = s.chain_tx_id "
            "where s.id = any(:ids) and t.tx_hash is not null",
            lambda n: n == len(ids), 30, "every burn broadcast", ids=ids,
        )  # fmt: skip
        portal.wait(
            "select count(*) from jobs where kind = 'chain.confirm' and status = 'running'",
            lambda n: n >= 1, 30, "the worker following a burn",
        )  # fmt: skip
        stack.kill9(first)
    finally:
        node.rpc("evm_setAutomine", True)
    node.rpc("evm_mine")
    assert portal.scalar(
        "select count(*) from settlements where id = any(:ids) and status = 'approved'", ids=ids
    ) == len(ids), portal.logs()

    # --- mid-payout: the provider takes the first transfer request and answers late
    momo.slow_first = 25.0
    second = portal.worker()
    deadline = time.monotonic() + 60
    while not momo.transfer_posts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert momo.transfer_posts, "no payout was asked for" + portal.logs()
    time.sleep(0.3)  # the request is in the provider's hands, its answer not yet back
    stack.kill9(second)
    slow_reference = momo.transfer_posts[0]
    killed_at = time.monotonic()

    portal.worker()
    portal.wait(
        "select count(*) from settlements where id = any(:ids) and status = 'paid'",
        lambda n: n == len(ids), RECOVERY, "every settlement paid", ids=ids,
    )  # fmt: skip
    recovered = time.monotonic() - killed_at

    with portal.engine.connect() as conn:
        payouts = conn.execute(
            sa.text(
                "select source_id, reference, status from payouts "
                "where source_type like 'settlement%' and source_id = any(:ids)"
            ),
            {"ids": ids},
        ).all()
        keys = conn.execute(
            sa.text("select id, chain_key, amount from settlements where id = any(:ids)"),
            {"ids": ids},
        ).all()
        burns = conn.execute(  # every settle transaction signed for them, re-signs included
            sa.text(
                "select count(*) from chain_txs where purpose = 'settle' and ref_id in "
                "(select id from chain_settlements where key = any(:keys))"
            ),
            {"keys": [k for _, k, _ in keys]},
        ).scalar()
    assert sorted(p.source_id for p in payouts) == sorted(ids), payouts  # one payout each
    assert {p.status for p in payouts} == {"paid"}
    references = {p.reference for p in payouts}
    assert slow_reference in references
    # One transfer each at the provider; every request named a payout's reference, and the
    # request cut off by the kill was made again with the same reference.
    assert set(momo.transfers) == references
    assert set(momo.transfer_posts) == references
    assert momo.transfer_posts.count(slow_reference) >= 2, momo.transfer_posts
    # One burn each: one transaction signed, one Settled log per settlement id.
    assert burns == len(ids)
    logs = _settled_logs(portal)
    expected = sorted((addresses.settlement_key(key), amount) for _, key, amount in keys)
    assert sorted(logs) == expected, (logs, expected)
    _books_agree_with_chain(portal)
    print(f"\nchaos: every settlement paid once {recovered:.0f} s after the last kill -9")


def test_lost_callbacks_are_made_up_for_by_the_status_query(portal):
    momo = portal.momo
    momo.lose_callbacks = True
    ok_vendor, failing_vendor = portal.world.vendor_ids[4:6]
    failing_number = settlement_world.momo_number(5).lstrip("+")
    momo.outcome[failing_number] = ("FAILED", "PAYEE_NOT_FOUND")
    posts_before = len(momo.transfer_posts)
    ok, failing = _ask(portal, [ok_vendor, failing_vendor])
    portal.approve([ok, failing])
    portal.wait(
        "select count(*) from settlements where id = any(:ids) and payout_sent_at is not null",
        lambda n: n == 2, 60, "both payouts sent", ids=[ok, failing],
    )  # fmt: skip
    sent_at = time.monotonic()
    portal.wait(
        "select count(*) from settlements where (id = :ok and status = 'paid') "
        "or (id = :bad and status = 'payout_failed')",
        lambda n: n == 2, CHECK_AFTER + 20, "the status query's answers", ok=ok, bad=failing,
    )  # fmt: skip
    took = time.monotonic() - sent_at
    assert len(momo.transfer_posts) == posts_before + 2
    references = momo.transfer_posts[-2:]
    # No callback reached the portal for these two: the status query found both.
    assert not [url for url, _ in momo.delivered if url.rsplit("/", 1)[-1] in references]
    assert all(momo.status_queries.get(ref, 0) >= 1 for ref in references)
    reason = portal.scalar("select failure_reason from settlements where id = :s", s=failing)
    assert "PAYEE_NOT_FOUND" in reason

    from portal.extensions import db
    from portal.settlements import services

    with portal.app.app_context():
        # The burned amount is owed off chain, not offered again for a new cash-out.
        left = services.available(portal.world.project_id, failing_vendor)
        assert left == BALANCE - CASH_OUT
        db.session.remove()
    assert _books_agree_with_chain(portal) == CASH_OUT  # owed again: the failed payout's
    burns_before = len(_settled_logs(portal))
    first_reference = portal.scalar(
        "select p.reference from payouts p join settlements s on s.payout_id = p.id "
        "where s.id = :s",
        s=failing,
    )
    queries_before = momo.status_queries.get(first_reference, 0)

    # The vendor's wallet is fixed; finance retries the payout through the settlement's page.
    del momo.outcome[failing_number]
    finance = stack.sign_in(portal.web.base_url, FINANCE, PASSWORD)
    method_id = portal.scalar("select method_id from settlements where id = :s", s=failing)
    stack.post_form(
        finance, portal.web.base_url, f"/settlements/{failing}/retry", {"method_id": method_id}
    )
    portal.wait(
        "select status from settlements where id = :s", lambda s: s == "paid",
        CHECK_AFTER + 20, "the retried payout paid", s=failing,
    )  # fmt: skip
    assert (
        portal.scalar(
            "select count(*) from payouts where source_id = :s and source_type like 'settlement%'",
            s=failing,
        )
        == 2
    )
    # Before the second try went out, the provider was asked again how the first one ended.
    assert momo.status_queries.get(first_reference, 0) > queries_before
    assert len(_settled_logs(portal)) == burns_before  # paid again without a second burn
    assert _books_agree_with_chain(portal) == 0
    print(f"\nchaos: lost callbacks made up for {took:.1f} s after the payouts were sent")


def test_a_payout_reported_paid_after_its_failure_is_paid_once(portal):
    momo = portal.momo
    momo.lose_callbacks = False
    vendor = portal.world.vendor_ids[4]
    number = settlement_world.momo_number(4).lstrip("+")
    momo.outcome[number] = ("FAILED", "INTERNAL_PROCESSING_ERROR")
    (sid,) = _ask(portal, [vendor])
    portal.approve([sid])
    portal.wait(
        "select status from settlements where id = :s", lambda s: s == "payout_failed",
        CHECK_AFTER + 30, "the payout failed", s=sid,
    )  # fmt: skip
    del momo.outcome[number]
    assert _books_agree_with_chain(portal) == CASH_OUT
    reference = portal.scalar(
        "select p.reference from payouts p join settlements s on s.payout_id = p.id "
        "where s.id = :s",
        s=sid,
    )
    momo.change_final(reference, "SUCCESSFUL")
    portal.wait(
        "select status from settlements where id = :s", lambda s: s == "paid",
        CHECK_AFTER + 30, "the settlement paid by its first try", s=sid,
    )  # fmt: skip
    with portal.engine.connect() as conn:
        tries = conn.execute(
            sa.text(
                "select reference, status from payouts "
                "where source_id = :s and source_type like 'settlement%'"
            ),
            {"s": sid},
        ).all()
    assert [(t.reference, t.status) for t in tries] == [(reference, "paid")]
    assert [url for url, _ in momo.delivered if url.endswith(reference)]
    assert _books_agree_with_chain(portal) == 0

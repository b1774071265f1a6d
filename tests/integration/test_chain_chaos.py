"""Chaos on the chain, with the portal as processes (web and worker on PostgreSQL, a Redis of the
test's own) and anvil mining a block a second, effects final two blocks deep.

- The node restarted from a state some seconds old in the middle of a distribution: the
  transactions of the lost blocks (final ones among them) are found missing by the chain watch,
  their effects go back to pending, the stored transactions are sent again in nonce order, and
  the distribution completes with every person credited once: the chain equals the database.
- The node paused (SIGSTOP) for 60 s in the middle of a distribution: after SIGCONT everything
  completes, nothing lost, nothing doubled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support import stack
from tests.support.anvil import DEV_KEY, Anvil
from tests.support.services import Unavailable, start_redis_server, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.pg_heavy]

PASSWORD = "a-long-test-password-42"
APPROVER = "chaos-approver@example.org"  # funding and starts need a second person
AMOUNT = "25"  # each, 2500 base units


@pytest.fixture
def own_redis(tmp_path):
    try:
        proc, url = start_redis_server(tmp_path)
    except Unavailable as exc:
        pytest.skip(str(exc))
    try:
        yield url + "/0"
    finally:
        proc.stop()


class Distribution:
    """The portal's processes on one node, a project deployed and funded, and helpers."""

    def __init__(self, url, redis_url, node, secrets, folder: Path):
        self.url, self.node, self.folder = url, node, folder
        self.env = stack.portal_env(
            database_url=url,
            redis_url=redis_url,
            instance_dir=folder / "instance",
            secrets=secrets,
            WEB3_PROVIDER_URI=node.url,
            CHAIN_FAUCET_KEY=DEV_KEY,
            CHAIN_CONFIRMATIONS="2",
            CHAIN_RECEIPT_WAIT_SECONDS="3",
            CHAIN_POLL_SECONDS="1",
            CHAIN_RESEND_SECONDS="1",
            SWEEP_INTERVAL_SECONDS="1",
            JOB_TIME_LIMIT_SECONDS="40",
            JOB_STALE_SECONDS="45",
            JOB_LOST_SECONDS="20",
            JOB_BACKOFF_BASE_MS="200",
        )
        stack.flask_cli(self.env, "seed-demo")
        stack.create_user(self.env, "chaos@example.org", PASSWORD, role="admin")
        stack.create_user(self.env, APPROVER, PASSWORD, role="admin")
        self.engine = sa.create_engine(url, pool_size=2)
        self.project_id = self.scalar("select min(id) from projects")
        self.group_id = self.scalar(
            "select g.id from beneficiary_groups g where g.project_id = :p order by g.id limit 1",
            p=self.project_id,
        )
        self.web = stack.WebServer(self.env, folder)
        self.worker = stack.Worker(self.env, folder, processes=1, threads=4)

    def scalar(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).all()

    def logs(self) -> str:
        parts = {
            "chain_txs": "select id, purpose, nonce, status, rollbacks, final_at, error "
            "from chain_txs order by nonce",
            "batches": "select id, number, status, tx_id from disbursement_batches order by id",
            "alerts": "select kind, message from chain_alerts",
            "jobs": "select id, kind, status, attempts, error from jobs where status <> "
            "'succeeded' order by id",
        }
        text = "\n".join(
            f"--- {name}\n" + "\n".join(map(str, self.rows(sql))) for name, sql in parts.items()
        )
        return f"\n{text}\n--- worker\n{self.worker.log_tail(40)}"

    def wait(self, check, what: str, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}{self.logs()}")

    def start(self):
        self.web.start()
        self.worker.start()
        self.web.wait_ready()
        self.worker.wait_ready()
        self.http = stack.sign_in(self.web.base_url, "chaos@example.org", PASSWORD)
        p = self.project_id
        self.post(f"/projects/{p}/chain/deploy", {"symbol": "CH", "decimals": 2})
        self.wait(
            lambda: (
                self.scalar("select status from project_chains where project_id=:p", p=p)
                == "deployed"
            ),
            "deployment",
            60,
        )
        self.post(f"/projects/{p}/chain/fund", {"amount": "10000", "confirmed": "yes"})
        stack.approve_newest(self.web.base_url, APPROVER, PASSWORD, self.engine, "funding")
        self.wait(
            lambda: (
                self.scalar("select funded from project_chains where project_id=:p", p=p)
                == 1_000_000
            ),
            "funding",
            60,
        )

    def post(self, path: str, data: dict):
        base = self.web.base_url
        token = stack.fresh_csrf(self.http, base, paths=(path.rsplit("/", 1)[0], "/"))
        reply = self.http.post(
            f"{base}{path}", data={**data, "csrf_token": token}, allow_redirects=False, timeout=60
        )
        assert reply.status_code in (302, 303), (path, reply.status_code, reply.text[:500])
        return reply

    def disburse(self) -> int:
        made = self.post(
            f"/projects/{self.project_id}/disbursements/new",
            {"title": "chaos", "amount": AMOUNT, "group_id": self.group_id, "batch_size": 2},
        )
        d_id = int(re.search(r"/disbursements/(\d+)", made.headers["Location"]).group(1))
        self.post(f"/disbursements/{d_id}/start", {})
        stack.approve_newest(
            self.web.base_url, APPROVER, PASSWORD, self.engine, "disbursement_start"
        )
        return d_id

    def confirmed_batches(self, d_id: int) -> int:
        return self.scalar(
            "select count(*) from disbursement_batches where disbursement_id=:d "
            "and status='confirmed'",
            d=d_id,
        )

    def settled(self, d_id: int) -> bool:
        return (
            self.scalar("select status from disbursements where id=:d", d=d_id) == "completed"
            and self.scalar(
                "select count(*) from chain_txs where nonce is not null and final_at is null"
            )
            == 0
        )

    def assert_chain_equals_database(self, d_id: int):
        _, people = self.rows("select total, beneficiaries from disbursements where id=:d", d=d_id)[
            0
        ]
        allocated = [a for (a,) in self.rows("select allocated from entitlements")]
        assert len(allocated) == people and set(allocated) == {2500}, self.logs()
        done = stack.flask_cli(self.env, "chain-check")
        assert "chain equals database" in done.stdout, done.stdout + done.stderr
        assert self.scalar("select funded from project_chains") == 1_000_000

    def stop(self):
        self.worker.stop()
        self.web.stop()
        self.engine.dispose()


@pytest.fixture
def distribution_factory(own_redis, portal_secrets, database_factory, tmp_path):
    made = []

    def make(node):
        d = Distribution(
            database_factory("portal_chaos"), own_redis, node, portal_secrets, tmp_path
        )
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


def _copy_state(source: Path, target: Path, holds) -> dict:
    """A copy of the state anvil dumps every second, once ``holds(state)`` says it has what the
    test needs: a loaded machine writes the dump late, so a fixed sleep may copy one that misses
    the setup's own transactions (a half-written file is read again too)."""
    found: dict = {}

    def copied():
        try:
            shutil.copyfile(source, target)
            found["state"] = json.loads(target.read_text())
        except (OSError, ValueError):
            return False
        return holds(found["state"])

    wait_for(copied, 30, interval=0.2, what="an anvil state dump holding the setup")
    return found["state"]


def _dumped_nonce(state: dict, address: str) -> int:
    account = state["accounts"].get(address.lower()) or {}
    value = account.get("nonce", 0)
    return int(value, 16) if isinstance(value, str) else int(value)


def test_node_restarted_from_an_older_state_mid_distribution(distribution_factory, tmp_path):
    state, old = tmp_path / "state.json", tmp_path / "old-state.json"
    node = Anvil(
        "--block-time", "1", "--dump-state", str(state), "--state-interval", "1",
        log_dir=tmp_path,
    )  # fmt: skip
    node.start()
    node.wait_ready()
    restarted = None
    stack_ = distribution_factory(node)
    try:
        stack_.start()
        # The operator sends the setup and the batches; on a version-2 project the treasury
        # signs the mint (funding), so the older state must hold both signers' setup.
        signer_id, operator, setup_nonce = stack_.rows(
            "select s.id, s.address, s.next_nonce from chain_signers s where s.name = 'operator'"
        )[0]
        treasury, treasury_nonce = stack_.rows(
            "select s.address, s.next_nonce from chain_signers s "
            "where s.id = (select signer_id from chain_txs where purpose = 'fund')"
        )[0]
        # The older state: deployed and funded (nonces below setup_nonce), no batch yet.
        dumped = _copy_state(
            state,
            old,
            lambda s: (
                _dumped_nonce(s, operator) >= setup_nonce
                and _dumped_nonce(s, treasury) >= treasury_nonce
            ),
        )
        assert _dumped_nonce(dumped, operator) == setup_nonce
        height = int(node.rpc("eth_blockNumber"), 16)
        d_id = stack_.disburse()
        # Batches final in blocks the older state does not have (final: their loss is a
        # rollback deeper than finality, the case the watch exists for).
        final_batches = (
            "select id from chain_txs where purpose = 'allocate' and final_at is not null"
        )
        stack_.wait(
            lambda: (
                int(node.rpc("eth_blockNumber"), 16) >= height + 4
                and len(stack_.rows(final_batches)) >= 4
            ),
            "final batches after the copy",
            60,
        )
        os.kill(node.pid, signal.SIGKILL)
        node.proc.wait(5)
        # Read after the node died: nothing can be included any more, so each of these is in a
        # block the restarted node does not have, and must be found lost.
        included = {
            tx_id
            for (tx_id,) in stack_.rows(
                "select id from chain_txs where signer_id = :s and nonce >= :n "
                "and status in ('confirmed', 'reverted')",
                s=signer_id,
                n=setup_nonce,
            )
        }
        lost_final = len(stack_.rows(final_batches))
        assert lost_final >= 4 and len(included) >= lost_final, stack_.logs()
        restarted = Anvil(
            "--block-time", "1", "--load-state", str(old), log_dir=tmp_path, port=node.port
        )
        restarted.start()
        restarted.wait_ready()
        assert int(restarted.rpc("eth_blockNumber"), 16) < height + 4
        assert int(restarted.rpc("eth_getTransactionCount", operator, "latest"), 16) == setup_nonce
        # The database still says "all final" until the chain watch (every worker's sweeper,
        # each second) compares it with the restarted node: wait for that before "completed"
        # can mean anything.
        rolled_back = "select count(*) from chain_txs where rollbacks > 0 and id = any(:ids)"
        stack_.wait(
            lambda: stack_.scalar(rolled_back, ids=list(included)) == len(included),
            f"the {len(included)} transactions of the lost blocks to be rolled back",
            60,
        )
        stack_.wait(lambda: stack_.settled(d_id), "the distribution to complete again", 120)
        assert stack_.scalar("select count(*) from chain_alerts where kind='deep_rollback'") > 0
        stack_.assert_chain_equals_database(d_id)
    finally:
        stack_.stop()
        if restarted is not None:
            restarted.stop()
        node.stop()


def test_node_paused_for_a_minute_mid_distribution(distribution_factory, tmp_path):
    node = Anvil("--block-time", "1", log_dir=tmp_path)
    node.start()
    node.wait_ready()
    began = time.monotonic()
    stack_ = distribution_factory(node)
    try:
        stack_.start()
        print(f"stack up, deployed and funded in {time.monotonic() - began:.1f} s")
        d_id = stack_.disburse()
        stack_.wait(lambda: stack_.confirmed_batches(d_id) >= 1, "a first batch", 60)
        os.kill(node.pid, signal.SIGSTOP)
        try:
            time.sleep(60)
        finally:
            os.kill(node.pid, signal.SIGCONT)
        resumed = time.monotonic()
        stack_.wait(lambda: stack_.settled(d_id), "the distribution to complete", 90)
        print(f"completed {time.monotonic() - resumed:.1f} s after the node resumed")
        stack_.assert_chain_equals_database(d_id)
    finally:
        stack_.stop()
        node.stop()

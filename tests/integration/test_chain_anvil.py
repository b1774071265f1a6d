"""Disbursement on a real JSON-RPC node (anvil), web and worker as separate processes.

The worker is killed in the middle of a disbursement and a new one started: every batch ends
confirmed, nobody is allocated twice (the contract's outstanding total is exactly the
disbursement's), and the transactions on chain match the rows in the database.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from web3 import Web3

from portal.chain import artifacts
from tests.support import stack
from tests.support.anvil import DEV_KEY
from tests.support.stack import post_form, wait_sql

pytestmark = [pytest.mark.integration, pytest.mark.pg_heavy]


def test_disbursement_survives_a_killed_worker(
    anvil_node, redis_db, portal_secrets, database_factory, tmp_path_factory
):
    url = database_factory("portal_it_chain")
    folder = tmp_path_factory.mktemp("chain-stack")
    env = stack.portal_env(
        database_url=url,
        redis_url=redis_db.url,
        instance_dir=folder / "instance",
        secrets=portal_secrets,
        WEB3_PROVIDER_URI=anvil_node.url,
        CHAIN_FAUCET_KEY=DEV_KEY,
        # A killed worker leaves its job "running" under a lease nobody renews, and the messages
        # it had already fetched unacknowledged in Redis: the sweeper takes back the first once
        # the lease expires and sends the second again once the dead consumer has been silent
        # as long (short settings here; tests/integration/test_chaos_jobs.py uses the defaults).
        JOB_TIME_LIMIT_SECONDS="20",
        JOB_LEASE_SECONDS="10",
        JOB_HEARTBEAT_SECONDS="3",
        SWEEP_INTERVAL_SECONDS="1",
        JOB_BACKOFF_BASE_MS="200",
    )
    stack.flask_cli(env, "seed-demo")
    stack.create_user(env, "chain-it@example.org", "a-long-test-password-42", role="admin")
    approver = ("chain-it-approver@example.org", "a-long-test-password-43")
    stack.create_user(env, *approver, role="admin")
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        project_id = conn.execute(sa.text("select min(id) from projects")).scalar()
        group_id, members = conn.execute(
            sa.text(
                "select g.id, count(*) from beneficiary_groups g join group_members m "
                "on m.group_id = g.id where g.project_id = :p group by g.id order by g.id limit 1"
            ),
            {"p": project_id},
        ).one()
    web = stack.WebServer(env, folder)
    worker = stack.Worker(env, folder, processes=1, threads=2)

    def logs() -> str:
        with engine.connect() as conn:
            rows = {
                table: conn.execute(sa.text(query)).all()
                for table, query in (
                    (
                        "jobs",
                        "select id, kind, status, attempts, lease_expires_at, error from jobs "
                        "where status <> 'succeeded' order by id",
                    ),
                    (
                        "chain_txs",
                        "select id, purpose, status, nonce, error from chain_txs order by id",
                    ),
                    (
                        "batches",
                        "select id, number, status, tx_id, error from "
                        "disbursement_batches order by id",
                    ),
                )
            }
        state = "\n".join(f"--- {t}\n" + "\n".join(map(str, r)) for t, r in rows.items())
        return f"\n{state}\n--- web\n{web.log_tail()}\n--- worker\n{worker.log_tail()}"

    try:
        web.start()
        worker.start()
        web.wait_ready()
        worker.wait_ready()
        base = web.base_url
        http = stack.sign_in(base, "chain-it@example.org", "a-long-test-password-42")

        post_form(
            http, base, f"/projects/{project_id}/chain/deploy", {"symbol": "IT", "decimals": 2}
        )
        wait_sql(
            engine,
            "select status from project_chains where project_id = :p",
            {"p": project_id},
            lambda s: s == "deployed",
            90,
            "deployment",
            logs,
        )
        funding = {"amount": "10000", "confirmed": "yes"}
        post_form(http, base, f"/projects/{project_id}/chain/fund", funding)
        stack.approve_newest(base, *approver, engine, "funding")
        wait_sql(
            engine,
            "select funded from project_chains where project_id = :p",
            {"p": project_id},
            lambda f: f == 1_000_000,
            60,
            "funding",
            logs,
        )

        made = post_form(
            http,
            base,
            f"/projects/{project_id}/disbursements/new",
            {"title": "IT", "amount": "25", "group_id": group_id, "batch_size": 3},
        )
        d_id = int(re.search(r"/disbursements/(\d+)", made.headers["Location"]).group(1))
        post_form(http, base, f"/disbursements/{d_id}/start", {})
        stack.approve_newest(base, *approver, engine, "disbursement_start")
        wait_sql(
            engine,
            "select count(*) from disbursement_batches where disbursement_id = :d "
            "and status = 'confirmed'",
            {"d": d_id},
            lambda n: n >= 1,
            60,
            "a first batch",
            logs,
        )
        worker.stop(timeout=0.5)  # SIGTERM, then SIGKILL: mid-disbursement
        worker = stack.Worker(env, folder, processes=1, threads=2)
        worker.start()
        worker.wait_ready()
        wait_sql(
            engine,
            "select status from disbursements where id = :d",
            {"d": d_id},
            lambda s: s in ("completed", "failed"),
            150,
            "the disbursement to settle",
            logs,
        )

        with engine.connect() as conn:
            status, total = conn.execute(
                sa.text("select status, total from disbursements where id = :d"), {"d": d_id}
            ).one()
            addresses = conn.execute(
                sa.text("select address, allocated from entitlements where project_id = :p"),
                {"p": project_id},
            ).all()
            contract_address = conn.execute(
                sa.text("select contract_address from project_chains where project_id = :p"),
                {"p": project_id},
            ).scalar()
            allocate_txs = conn.execute(
                sa.text(
                    "select count(*) from chain_txs where purpose = 'allocate' "
                    "and status = 'confirmed' and project_id = :p"
                ),
                {"p": project_id},
            ).scalar()
            batches = conn.execute(
                sa.text("select count(*) from disbursement_batches where disbursement_id = :d"),
                {"d": d_id},
            ).scalar()
        assert status == "completed", logs()
        assert total == 2500 * members
        assert len(addresses) == members and {a for _, a in addresses} == {2500}
        assert allocate_txs <= batches  # a batch found done on chain needs no transaction

        w3 = Web3(Web3.HTTPProvider(anvil_node.url))
        contract = w3.eth.contract(address=contract_address, abi=artifacts.abi("Entitlements"))
        assert contract.functions.outstanding().call() == total
        for address, allocated in addresses:
            assert contract.functions.entitlementOf(address).call() == allocated
    finally:
        worker.stop()
        web.stop()
        engine.dispose()

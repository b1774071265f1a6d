"""A campaign on the production set-up (PostgreSQL, Redis, the web server taking receipts,
Dramatiq worker processes) against the local provider server, with a worker killed with -9
in the middle: every message is delivered exactly once, every receipt lands, and the campaign
finishes.

The provider takes an idempotency key here, so a message whose send the kill interrupted is
sent again with the same key and the provider does not hand it to the phone twice.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support import campaign_run, stack
from tests.support.anvil import DEV_KEY
from tests.support.comms_provider import FakeProviders
from tests.support.services import free_port

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.pg_heavy]

PEOPLE = 300
RATE = 30  # messages per second, shared by every worker
DEADLINE = 120  # seconds from the kill to every receipt in


def test_a_worker_killed_mid_campaign_loses_and_repeats_nothing(
    anvil_node, portal_secrets, database_factory, app_factory, redis_db, tmp_path
):
    url = database_factory("portal_campaign")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with FakeProviders(idempotency=True) as provider:
        settings = {
            **provider.sms_settings(),
            "PUBLIC_BASE_URL": base,
            "OUTBOUND_PRIVATE_HOSTS": "127.0.0.1",
            "SMS_RATE_PER_SECOND": str(RATE),
            "JOB_LEASE_SECONDS": "4",
            "JOB_HEARTBEAT_SECONDS": "1",
            "SWEEP_INTERVAL_SECONDS": "2",
            "JOB_BACKOFF_BASE_MS": "200",
            "WORKER_THREADS": "4",
        }
        env = stack.portal_env(
            database_url=url,
            redis_url=redis_db.url,
            instance_dir=tmp_path / "instance",
            secrets=portal_secrets,
            WEB3_PROVIDER_URI=anvil_node.url,
            CHAIN_FAUCET_KEY=DEV_KEY,
            **settings,
        )
        user_id = stack.create_user(env, "campaigns@example.org", "a-long-test-password-42")
        app = app_factory(url, PUBLIC_BASE_URL=base)
        engine = sa.create_engine(url, pool_size=2)
        web = stack.WebServer(env, tmp_path, port=port)
        workers: list[stack.Worker] = []

        def logs() -> str:
            tails = "\n".join(f"--- worker\n{w.log_tail(30)}" for w in workers)
            return f"\n{tails}\n--- web\n{web.log_tail(30)}"

        try:
            web.start()
            web.wait_ready()
            with app.app_context():
                from portal.accounts.models import User
                from portal.extensions import db
                from portal.projects import services as projects

                creator = db.session.get(User, user_id)
                project = projects.create({"name": "Campaign chaos", "type": "cva"}, creator)
                db.session.commit()
                numbers = campaign_run.seed_people(project.id, PEOPLE)
                campaign_id = campaign_run.launch(project.id, user_id)
            first = stack.Worker(env, tmp_path, processes=1, threads=4)
            workers.append(first)
            first.start()
            first.wait_ready()
            campaign_run.wait_counts(
                engine,
                campaign_id,
                lambda c: c.get("sent", 0) + c.get("delivered", 0) >= PEOPLE // 3,
                60,
                "a third of the campaign sent",
                logs,
            )
            stack.kill9(first)
            second = stack.Worker(env, tmp_path, processes=1, threads=4)
            workers.append(second)
            second.start()
            second.wait_ready()
            final = campaign_run.wait_counts(
                engine,
                campaign_id,
                lambda c: c.get("delivered", 0) == PEOPLE,
                DEADLINE,
                "every message delivered",
                logs,
            )
        finally:
            for worker in workers:
                worker.stop(timeout=2)
            web.stop(timeout=5)

    assert final == {"delivered": PEOPLE}
    # The phones: each got its message once, whatever was interrupted.
    assert sorted(provider.delivered) == sorted(numbers)
    assert set(provider.delivered.values()) == {1}
    assert provider.posts == PEOPLE and provider.refused == 0
    assert provider.receipt_answers[403] == 0
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("select status from campaigns where id = :c"), {"c": campaign_id}
        ).scalar()
    assert status == "finished"
    # The rate held across the kill and the second worker.
    assert provider.last_at - provider.first_at >= (PEOPLE - 1) / RATE * 0.9
    engine.dispose()

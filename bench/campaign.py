#!/usr/bin/env python3
"""A campaign of 10,000 SMS through the comms queue to the local provider server, at a rate.

What runs, as the README's production set-up: anvil, a fresh PostgreSQL database, Redis, the
Procfile's release, web (gunicorn, which takes the provider's signed delivery receipts) and
worker (two Dramatiq processes) commands, and a local SMS provider in Twilio's shape that
posts ``sent`` and ``delivered`` receipts back to the web process
(``tests/support/comms_provider.py``). People are written to the database directly; the
campaign is composed and sent through the services in this process.

Measured: how long the start job took to make the 10,000 messages (and their jobs), how fast
the provider was sent to beside ``SMS_RATE_PER_SECOND`` (the limit shared by
every worker, kept in Redis), the time from "send" to the first message at the provider and to
the last delivery receipt taken by the portal, and whether any phone got a message twice.
Ends with one JSON line.

    .venv/bin/python bench/campaign.py [--messages 10000] [--rate 50] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import _common  # noqa: E402
import _redeem_stages  # noqa: E402
import _services  # noqa: E402  (bench/ is this script's folder)
import _statements  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from tests.support import campaign_run, services, stack  # noqa: E402
from tests.support.comms_provider import FakeProviders  # noqa: E402

PASSWORD = "a-long-bench-password-9"  # noqa: S105  (a throw-away database's user)
DONE = ("delivered", "failed", "review", "opted_out", "cancelled")


def run(args) -> dict:
    result: dict = {
        "bench": "campaign",
        "messages": args.messages,
        "configured_rate_per_second": args.rate,
        "web": stack.procfile()["web"],
        "worker": stack.procfile()["worker"],
        "worker_threads": args.threads,
        "settings": args.env,
        "cpus": os.cpu_count(),
    }
    cleanup: list = []
    try:
        started = _services.start("campaign", cleanup, keep_logs=args.keep_logs)
        provider = FakeProviders(senders=8)
        provider.__enter__()
        cleanup.append(lambda: provider.__exit__(None, None, None))
        port = services.free_port()
        base = f"http://127.0.0.1:{port}"
        env = started.env(
            "campaign",
            **provider.sms_settings(),
            PUBLIC_BASE_URL=base,
            OUTBOUND_PRIVATE_HOSTS="127.0.0.1",
            SMS_RATE_PER_SECOND=str(args.rate),
            WORKER_THREADS=str(args.threads),
            **(_statements.env(started.folder) if args.count_statements else {}),
            **args.env,
        )
        stack.run_procfile_release(env)
        user_id = stack.create_user(env, "campaigns@example.org", PASSWORD)
        # The Procfile's commands, as operators run them (gunicorn with gevent, two Dramatiq
        # processes): the web process takes the provider's receipts.
        web, workers = _services.start_procfile(env, started.folder, cleanup, port=port)

        from config import Config
        from portal import create_app

        app = create_app(
            Config,
            role="worker",
            SQLALCHEMY_DATABASE_URI=started.url,
            REDIS_URL=started.redis_url,
            BROKER="redis",
            SECRET_KEY=started.keys["SECRET_KEY"],
            PII_KEY=started.keys["PII_KEY"],
            INSTANCE_DIR=str(started.folder / "bench-process"),
            RATELIMIT_STORAGE_URI="memory://",
            SOCKETIO_CHANNEL=env["SOCKETIO_CHANNEL"],
            PUBLIC_BASE_URL=base,
        )
        engine = sa.create_engine(started.url, pool_size=2)
        cleanup.append(engine.dispose)
        with app.app_context():
            from portal.accounts.models import User
            from portal.extensions import db
            from portal.projects import services as projects

            project = projects.create(
                {"name": "Campaign bench", "type": "cva"}, db.session.get(User, user_id)
            )
            db.session.commit()
            seeded = time.monotonic()
            campaign_run.seed_people(project.id, args.messages)
            result["seed_seconds"] = round(time.monotonic() - seeded, 1)
            pids = {"web": web.pid, "workers": workers.pid}
            database = started.url.rsplit("/", 1)[-1]
            cpu_before = _redeem_stages.cpu_seconds(pids, database)
            statements_before = _statements.read(started.folder) if args.count_statements else {}
            # This process alone (not its children): the local provider and its receipts.
            own_before = sum(os.times()[:2])
            sent_at = time.monotonic()
            campaign_id = campaign_run.launch(project.id, user_id)
            db.session.remove()
        final = campaign_run.wait_counts(
            engine,
            campaign_id,
            lambda c: sum(c.get(s, 0) for s in DONE) >= args.messages,
            args.timeout,
            "every message settled",
            lambda: f"\n--- workers\n{workers.log_tail(20)}\n--- web\n{web.log_tail(20)}",
        )
        # The last receipts may still be on their way to the web process.
        services.wait_for(
            lambda: sum(provider.receipt_answers.values()) >= 2 * args.messages,
            30,
            what="every receipt answered",
        )
        load = _common.load_average()
        cpu_after = _redeem_stages.cpu_seconds(pids, database)
        result["cpu_ms_per_message"] = _redeem_stages.cpu_per_redemption(
            cpu_before, cpu_after, args.messages
        )
        result["cpu_ms_per_message"]["provider (this process)"] = round(
            (sum(os.times()[:2]) - own_before) * 1000 / args.messages, 1
        )
        if args.count_statements:
            result["statements_per_message"] = _statements.per_redemption(
                statements_before, _statements.read(started.folder), args.messages
            )
        result.update(make_times(engine, campaign_id))
        sending = provider.last_at - provider.first_at
        result.update(
            {
                "statuses": final,
                "provider_posts": provider.posts,
                "phones_reached": len(provider.delivered),
                "most_messages_to_one_phone": max(provider.delivered.values()),
                "receipt_answers": {str(k): v for k, v in provider.receipt_answers.items()},
                "sent_per_second": round((provider.posts - 1) / sending, 2) if sending else None,
                "send_to_first_at_provider_s": round(provider.first_at - sent_at, 2),
                "send_to_last_at_provider_s": round(provider.last_at - sent_at, 2),
                "send_to_last_receipt_s": round(provider.last_receipt_at - sent_at, 2),
                "load_average": load,
            }
        )
        result["rate_kept"] = result["sent_per_second"] <= args.rate * 1.02
        result["target_met"] = (
            final.get("delivered", 0) == args.messages
            and result["most_messages_to_one_phone"] == 1
            and result["rate_kept"]
        )
        return result
    finally:
        _common.clean_up(cleanup)


def make_times(engine, campaign_id: int) -> dict:
    """How long the start job took to make the campaign's messages and their jobs (its last
    run, from its claim to its success), and the spread of the messages' creation times."""
    with engine.connect() as conn:
        started, finished, first, last = conn.execute(
            sa.text(
                "select a.started_at, j.finished_at, "
                "(select min(created_at) from outbox_messages where campaign_id = c.id), "
                "(select max(created_at) from outbox_messages where campaign_id = c.id) "
                "from campaigns c join jobs j on j.id = c.start_job_id "
                "join job_attempts a on a.job_id = j.id "
                "where c.id = :c order by a.number desc limit 1"
            ),
            {"c": campaign_id},
        ).one()
    return {
        "make_messages_s": round((finished - started).total_seconds(), 2),
        "first_to_last_message_made_s": round((last - first).total_seconds(), 2),
    }


def print_table(result: dict) -> None:
    rows = [
        ("messages", result["messages"]),
        ("statuses", result.get("statuses")),
        ("configured rate (msg/s)", result["configured_rate_per_second"]),
        ("sent to the provider (msg/s)", result.get("sent_per_second")),
        ("start job: messages made in (s)", result.get("make_messages_s")),
        ("send → first at provider (s)", result.get("send_to_first_at_provider_s")),
        ("send → last at provider (s)", result.get("send_to_last_at_provider_s")),
        ("send → last delivery receipt (s)", result.get("send_to_last_receipt_s")),
        ("most messages to one phone", result.get("most_messages_to_one_phone")),
        ("CPU per message (ms)", result.get("cpu_ms_per_message")),
        ("SQL statements per message", result.get("statements_per_message")),
        ("load average", result.get("load_average")),
    ]
    for name, value in rows:
        print(f"{name:<34} {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50, help="SMS_RATE_PER_SECOND")
    parser.add_argument(
        "--threads", type=int, default=8, help="WORKER_THREADS: threads per worker process"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    _common.add_env_option(parser)
    parser.add_argument(
        "--count-statements",
        action="store_true",
        help="count the SQL statements the web and worker processes send per message",
    )
    args = parser.parse_args()
    args.env = _common.env_settings(args.env)
    return _common.finish(run(args), print_table, strict=args.strict)


if __name__ == "__main__":
    sys.exit(main())

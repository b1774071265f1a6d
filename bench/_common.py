"""Shared by the benchmarks: how loaded the machine is, undoing what a run set up, the last JSON
line, and the raw Redis publish/subscribe baseline the live-event benchmarks compare with.

Imported as ``_common`` (bench/ on ``sys.path``) or ``bench._common`` (the repository root on
it); it needs the repository root on ``sys.path`` for the Redis baseline only.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import time


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded: a figure means little without them."""
    return [round(x, 2) for x in os.getloadavg()]


def clean_up(cleanup: list) -> None:
    """Run the undo steps a run registered, last first; a failing step is reported on stderr
    and the others still run (a stopped server must not leave a database behind)."""
    for step in reversed(cleanup):
        try:
            step()
        except Exception as exc:  # keep cleaning up
            print(f"cleanup: {exc!r}", file=sys.stderr)


def print_json_line(result: dict) -> None:
    """The benchmark's figures as its last line of output, one JSON object."""
    print(json.dumps(result, sort_keys=True), flush=True)


def add_env_option(parser) -> None:
    """``--env NAME=VALUE`` (repeatable): a setting for the portal's processes, e.g. the old
    value of a setting to measure before and after in one session."""
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra setting"
    )


def env_settings(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in items)


def finish(result: dict, print_table, *, strict: bool) -> int:
    """The table for people, the JSON line for machines; the exit status: 1 when ``strict`` and
    the target was missed."""
    print_table(result)
    print_json_line(result)
    return 1 if strict and not result["target_met"] else 0


def redis_publish_subscribe(url: str, count: int, rate: float, size: int = 0) -> list[float]:
    """One client publishes ``count`` messages at ``rate`` per second, each stamped with
    ``time.time()`` (padded to about ``size`` bytes); another, subscribed, takes the difference
    at receipt. Seconds, one a message received."""
    import redis

    from tests.support import services

    channel = f"bench:pubsub:{secrets.token_hex(4)}"
    subscriber = redis.Redis.from_url(url)
    pubsub = subscriber.pubsub()
    pubsub.subscribe(channel)
    # Publish only once the server has confirmed the subscription.
    services.wait_for(
        lambda: (pubsub.get_message(timeout=0.1) or {}).get("type") == "subscribe",
        5,
        what="the SUBSCRIBE confirmation",
    )
    latencies: list[float] = []

    def listen():
        deadline = time.monotonic() + count / rate + 10
        while len(latencies) < count and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message and message["type"] == "message":
                stamp = float(message["data"].split(b" ", 1)[0])
                latencies.append(time.time() - stamp)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    publisher = redis.Redis.from_url(url)
    padding = b" " + b"x" * (size - 20) if size > 20 else b""
    start = time.perf_counter()
    for i in range(count):
        # On schedule, without drift and without catch-up bursts.
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        publisher.publish(channel, repr(time.time()).encode() + padding)
    listener.join(15)
    pubsub.close()
    subscriber.close()
    publisher.close()
    return latencies

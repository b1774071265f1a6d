"""On a real Redis: a message sent to an idle queue is taken at once, and an idle consumer asks
Redis about once per idle wait instead of ten times a second (``portal.jobs.broker``)."""

from __future__ import annotations

import secrets
import threading
import time

import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from portal.jobs.broker import PortalRedisBroker

pytestmark = pytest.mark.integration


@pytest.fixture
def namespace(redis_db):
    name = f"doorbell-{secrets.token_hex(4)}"
    yield name
    import redis

    client = redis.Redis.from_url(redis_db.url)
    keys = list(client.scan_iter(f"{name}*"))
    if keys:
        client.delete(*keys)


def message(queue: str = "default") -> Message:
    return Message(queue_name=queue, actor_name="noop", args=(), kwargs={}, options={})


def consume_until(consumer, stop: threading.Event, got: list) -> None:
    while not stop.is_set():
        found = next(consumer)
        if found is not None:
            got.append((time.monotonic(), found))
            consumer.ack(found)


def counting_fetches(broker) -> list[float]:
    fetches: list[float] = []
    real = broker._dispatch("fetch")

    def fetch(*args):
        fetches.append(time.monotonic())
        return real(*args)

    broker.do_fetch = fetch
    return fetches


@pytest.mark.parametrize("delayed", [False, True])
def test_a_message_sent_to_an_idle_queue_is_taken_at_once(redis_db, namespace, delayed):
    broker = PortalRedisBroker(url=redis_db.url, namespace=namespace, middleware=[], idle_ms=5000)
    queue = "default.DQ" if delayed else "default"
    consumer = broker.consume(queue, prefetch=4, timeout=100)
    stop, got = threading.Event(), []
    reader = threading.Thread(target=consume_until, args=(consumer, stop, got), daemon=True)
    reader.start()
    try:
        time.sleep(0.5)  # the consumer found nothing and waits on the bell (up to 5 s)
        sent_at = time.monotonic()
        broker.enqueue(message(), delay=10 if delayed else None)
        deadline = time.monotonic() + 3
        while not got and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        stop.set()
        broker.enqueue(message(queue))  # rings the bell: the reader returns and sees stop
        reader.join(6)
    assert got, "the message was not taken within 3 s"
    assert got[0][0] - sent_at < 0.5  # against the 5 s idle wait


def test_an_idle_consumer_asks_redis_about_once_per_idle_wait(redis_db, namespace):
    """Dramatiq's own consumer, with the Procfile's 100 ms timeout, beside the doorbell's."""
    window = 1.6
    counts = {}
    for name, broker in (
        ("dramatiq", RedisBroker(url=redis_db.url, namespace=namespace, middleware=[])),
        (
            "doorbell",
            PortalRedisBroker(url=redis_db.url, namespace=namespace, middleware=[], idle_ms=500),
        ),
    ):
        fetches = counting_fetches(broker)
        consumer = broker.consume("reports", prefetch=4, timeout=100)
        stop, got = threading.Event(), []
        reader = threading.Thread(target=consume_until, args=(consumer, stop, got), daemon=True)
        reader.start()
        time.sleep(window)
        stop.set()
        PortalRedisBroker(url=redis_db.url, namespace=namespace, middleware=[]).enqueue(
            message("reports")
        )
        reader.join(3)
        counts[name] = len(fetches)
    # Once per 500 ms, the first look and the last wake-up (a loaded host adds one, at most).
    assert counts["doorbell"] <= window / 0.5 + 3
    assert counts["dramatiq"] >= 10  # the 100 ms backoff: about 16 in the window
    assert counts["dramatiq"] >= 2 * counts["doorbell"]


def test_a_full_consumer_leaves_the_token_for_another(redis_db, namespace):
    """A consumer holding all it may prefetch sleeps instead of taking a token it cannot use."""
    broker = PortalRedisBroker(url=redis_db.url, namespace=namespace, middleware=[], idle_ms=5000)
    full = broker.consume("comms", prefetch=1, timeout=100)
    broker.enqueue(message("comms"))
    assert next(full) is not None  # held, not acknowledged: it is full
    broker.client.delete(broker.bell("comms"))
    broker.enqueue(message("comms"))  # one token
    started = time.monotonic()
    assert next(full) is None  # it does not fetch while full, and sleeps 100 ms
    assert time.monotonic() - started < 1
    assert broker.client.llen(broker.bell("comms")) == 1  # the token is still there

"""The Dramatiq broker for this process.

Actors are declared against a broker object at run time (``workers.actors.declare``), not at
import, so every app (and every test) gets a broker of its own and the web process never imports
worker code. Retries are the Job row's business (``workers.middleware``), so Dramatiq's own
Retries middleware is left out.
"""

from __future__ import annotations

import time

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.brokers.stub import StubBroker
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import AgeLimit, ShutdownNotifications, TimeLimit
from flask import Flask, current_app

from portal.jobs.kinds import QUEUES


def _middleware(app: Flask):
    limit_ms = app.config["JOB_TIME_LIMIT_SECONDS"] * 1000
    if app.config["JOB_LEASE_SECONDS"] < 2 * app.config["JOB_HEARTBEAT_SECONDS"] + 1:
        # One late heartbeat must not cost a live worker its job.
        raise RuntimeError("JOB_LEASE_SECONDS must exceed twice JOB_HEARTBEAT_SECONDS")
    return [AgeLimit(), TimeLimit(time_limit=limit_ms), ShutdownNotifications()]


class PortalRedisBroker(RedisBroker):
    """Dramatiq's Redis broker with a doorbell per queue.

    Dramatiq's consumer of an empty queue polls it again after a backoff growing to the
    worker's timeout (100 ms in the Procfile): each of a worker process's twelve consumers (six
    queues and their delay queues) asked Redis about ten times a second, about 150 ms of CPU a
    second for two idle worker processes, and a job arriving on an idle queue still waited up to
    the timeout. Here every enqueue also pushes a token on the queue's doorbell list, and an
    idle consumer blocks on that list (BLPOP) for up to ``idle_ms`` instead of sleeping: it
    wakes as soon as a message is sent, and looks on its own only every ``idle_ms`` (for what
    arrives without a token: messages Redis gives back from a dead worker, or put back by a
    consumer that stopped). A consumer holding as many messages as it may prefetch sleeps the
    worker timeout as before (it could not take a message the token announced), and one of a
    delay queue that holds delayed messages waits no longer than the worker timeout, since it
    moves them to their queue when they are due.
    """

    BELL_TOKENS = 8  # tokens kept per doorbell: more would only wake consumers for nothing

    def __init__(self, *args, idle_ms: int = 1000, doorbell: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.idle_ms, self.doorbell = idle_ms, doorbell

    def bell(self, queue_name: str) -> str:
        return f"{self.namespace}:{queue_name}.bell"

    def enqueue(self, message, *, delay=None):
        sent = super().enqueue(message, delay=delay)
        if not self.doorbell:
            return sent
        key = self.bell(sent.queue_name)  # the delay queue's, for a delayed message
        pipe = self.client.pipeline(transaction=False)
        pipe.lpush(key, 1).ltrim(key, 0, self.BELL_TOKENS - 1)
        pipe.execute()
        return sent

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000):
        if not self.doorbell:
            return super().consume(queue_name, prefetch, timeout)
        return _DoorbellConsumer(self, queue_name, prefetch, timeout)


class _DoorbellConsumer(_RedisConsumer):
    def __init__(self, broker: PortalRedisBroker, queue_name, prefetch, timeout):
        # Dramatiq's own backoff after a miss is kept to a millisecond: the wait is ``_wait``'s.
        super().__init__(broker, queue_name, prefetch, timeout=1)
        self.worker_timeout_s = timeout / 1000
        self.idle_s = max(broker.idle_ms, timeout) / 1000
        self.delays = queue_name.endswith(".DQ")
        self.bell = broker.bell(queue_name)

    def __next__(self):
        found = super().__next__()
        if found is None:
            self._wait()
        return found

    def _wait(self) -> None:
        on_bell, seconds = wait_plan(
            self.outstanding_message_count,
            self.prefetch,
            delays=self.delays,
            worker_timeout_s=self.worker_timeout_s,
            idle_s=self.idle_s,
        )
        if not on_bell:
            time.sleep(seconds)
            return
        try:
            self.broker.client.blpop([self.bell], timeout=seconds)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None


def wait_plan(
    held: int, prefetch: int, *, delays: bool, worker_timeout_s: float, idle_s: float
) -> tuple[bool, float]:
    """How a consumer that found nothing waits: (on the doorbell?, for how many seconds)."""
    if held >= prefetch:
        return False, worker_timeout_s  # it could not take what a token announced
    if delays and held:
        return True, worker_timeout_s  # delayed messages in hand fall due meanwhile
    return True, idle_s


def init_broker(app: Flask) -> dramatiq.Broker:
    if app.config["BROKER"] == "stub":
        broker = StubBroker(middleware=_middleware(app))
    else:
        broker = PortalRedisBroker(
            url=app.config["REDIS_URL"],
            middleware=_middleware(app),
            idle_ms=int(app.config["JOB_IDLE_WAIT_MS"]),
            doorbell=bool(app.config["JOB_DOORBELL"]),
        )
    for queue in QUEUES:
        broker.declare_queue(queue)
    dramatiq.set_broker(broker)
    app.extensions["dramatiq_broker"] = broker
    return broker


def get_broker(app: Flask | None = None) -> dramatiq.Broker:
    return (app or current_app).extensions["dramatiq_broker"]

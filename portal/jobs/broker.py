"""The Dramatiq broker for this process.

Actors are declared against a broker object at run time (``workers.actors.declare``), not at
import, so every app (and every test) gets a broker of its own and the web process never imports
worker code. Retries are the Job row's business (``workers.middleware``), so Dramatiq's own
Retries middleware is left out.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
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
    """Dramatiq's Redis broker, whose consumer of an empty queue polls again after a backoff
    growing to the worker's timeout (100 ms in the Procfile): a payment's transfer arriving on
    an idle queue waited up to that long before a thread saw it. The queues named in
    ``fast_queues`` are polled at most ``fast_ms`` apart instead (a Redis call per queue and
    process every ``fast_ms`` while idle); the others keep the longer backoff."""

    def __init__(self, *args, fast_queues: tuple[str, ...] = (), fast_ms: int = 100, **kwargs):
        super().__init__(*args, **kwargs)
        self.fast_queues, self.fast_ms = set(fast_queues), fast_ms

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000):
        if queue_name in self.fast_queues:
            timeout = min(timeout, self.fast_ms)
        return super().consume(queue_name, prefetch, timeout)


def init_broker(app: Flask) -> dramatiq.Broker:
    if app.config["BROKER"] == "stub":
        broker = StubBroker(middleware=_middleware(app))
    else:
        broker = PortalRedisBroker(
            url=app.config["REDIS_URL"],
            middleware=_middleware(app),
            fast_queues=tuple(app.config["JOB_FAST_POLL_QUEUES"]),
            fast_ms=int(app.config["JOB_FAST_POLL_MS"]),
        )
    for queue in QUEUES:
        broker.declare_queue(queue)
    dramatiq.set_broker(broker)
    app.extensions["dramatiq_broker"] = broker
    return broker


def get_broker(app: Flask | None = None) -> dramatiq.Broker:
    return (app or current_app).extensions["dramatiq_broker"]

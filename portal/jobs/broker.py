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


def init_broker(app: Flask) -> dramatiq.Broker:
    if app.config["BROKER"] == "stub":
        broker = StubBroker(middleware=_middleware(app))
    else:
        broker = RedisBroker(url=app.config["REDIS_URL"], middleware=_middleware(app))
    for queue in QUEUES:
        broker.declare_queue(queue)
    dramatiq.set_broker(broker)
    app.extensions["dramatiq_broker"] = broker
    return broker


def get_broker(app: Flask | None = None) -> dramatiq.Broker:
    return (app or current_app).extensions["dramatiq_broker"]

"""Job handlers by domain, declared as Dramatiq actors on a given broker.

A handler is a plain function ``handler(job) -> dict | None`` registered for a job kind; it may
``flush`` but never commits: the middleware commits its work together with the job's success.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable

import dramatiq

from portal.extensions import db
from portal.jobs.kinds import KINDS
from portal.jobs.models import Job

HANDLERS: dict[str, Callable[[Job], dict | None]] = {}
ACTOR_MODULES = (
    "workers.actors.system",
    "workers.actors.imports",
    "workers.actors.cards",
    "workers.actors.chain",
    "workers.actors.comms",
    "workers.actors.accounts",
    "workers.actors.redemptions",
    "workers.actors.payouts",
    "workers.actors.messages",
)


def handles(kind_name: str):
    if kind_name not in KINDS:
        raise KeyError(f"unknown job kind {kind_name}")

    def decorator(fn):
        HANDLERS[kind_name] = fn
        return fn

    return decorator


def _runner(kind_name: str):
    def run(job_id: int) -> None:
        job = db.session.get(Job, job_id)
        result = HANDLERS[kind_name](job)
        if result is not None:
            # Committed by the middleware together with the success.
            job.result_json = json.dumps(result, default=str)

    run.__name__ = kind_name.replace(".", "_")
    return run


def declare(broker: dramatiq.Broker) -> None:
    """Declare one actor per handled kind on this broker (called once per process)."""
    for module in ACTOR_MODULES:
        importlib.import_module(module)  # each registers its handlers

    for name, _handler in HANDLERS.items():
        kind = KINDS[name]
        dramatiq.Actor(
            _runner(name),
            broker=broker,
            actor_name=name,
            queue_name=kind.queue,
            priority=0,
            options={},
        )

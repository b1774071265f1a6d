"""Which jobs have a message in the broker right now.

The sweeper compares it with the jobs the database says are queued or retrying: a job without
a message (the send after commit failed, Redis restarted without its data, a failover lost its
last writes) is sent again at once, instead of after a guessed age.

Dramatiq's RedisBroker keeps every message that is not acknowledged yet in one hash per queue
(``<namespace>:<queue>.msgs``, and ``.DQ.msgs`` for delayed ones), from the enqueue until the
worker acknowledges it after processing: waiting, delayed, prefetched and in-flight messages
are all there, except that a message fetched by a worker process that then died is as good as
lost until Dramatiq's maintenance hands it back. The StubBroker (unit tests) keeps them in its
in-memory queues.
"""

from __future__ import annotations

import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name

from portal.jobs.kinds import QUEUES


def _job_id(message: dramatiq.Message) -> int | None:
    args = message.args
    return args[0] if args and isinstance(args[0], int) else None


def _held_by_dead_consumers(broker: RedisBroker, dead_after_ms: int) -> set[bytes]:
    """Messages a worker process had fetched when it died (kill -9): they stay in its
    acknowledgement set until Dramatiq's random maintenance hands them back, a minute or more
    after the death. They count as missing, so the sweeper sends their jobs again at once (the
    old copy, handed back later, finds its job already claimed or done)."""
    client, ns = broker.client, broker.namespace
    cutoff = int(time.time() * 1000) - dead_after_ms
    dead = client.zrangebyscore(f"{ns}:__heartbeats__", 0, cutoff)
    held: set[bytes] = set()
    for worker in dead:
        worker = worker.decode() if isinstance(worker, bytes) else worker
        for queue in QUEUES:
            for name in (queue, dq_name(queue)):
                held |= set(client.smembers(f"{ns}:__acks__.{worker}.{name}"))
    return held


def _redis_job_ids(broker: RedisBroker, dead_after_ms: int) -> set[int]:
    found: set[int] = set()
    lost = _held_by_dead_consumers(broker, dead_after_ms)
    for queue in QUEUES:
        for name in (queue, dq_name(queue)):
            key = f"{broker.namespace}:{name}.msgs"
            for message_id, data in broker.client.hscan_iter(key, count=1000):
                if message_id in lost:
                    continue
                job_id = _job_id(dramatiq.Message.decode(data))
                if job_id is not None:
                    found.add(job_id)
    return found


def _stub_job_ids(broker: StubBroker) -> set[int]:
    found: set[int] = set()
    for queue in broker.queues.values():
        for data in list(queue.queue):
            job_id = _job_id(dramatiq.Message.decode(data))
            if job_id is not None:
                found.add(job_id)
    return found


def job_ids(broker: dramatiq.Broker, dead_after_seconds: int = 30) -> set[int] | None:
    """The ids of the jobs with a message in the broker that a live consumer may still
    process; None when this broker cannot tell. A consumer silent for ``dead_after_seconds``
    is taken as dead (a live one talks to Redis at every fetch, at least once a second)."""
    if isinstance(broker, RedisBroker):
        return _redis_job_ids(broker, dead_after_seconds * 1000)
    if isinstance(broker, StubBroker):
        return _stub_job_ids(broker)
    return None

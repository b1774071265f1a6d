"""Which jobs have a message in the broker right now.

The sweeper compares it with the jobs the database says are queued or retrying: a job without
a message (the send after commit failed, Redis restarted without its data, a failover lost its
last writes) is sent again at once, instead of after a guessed age.

Dramatiq's RedisBroker keeps every message that is not acknowledged yet in one hash per queue
(``<namespace>:<queue>.msgs``, and ``.DQ.msgs`` for delayed ones), from the enqueue until the
worker acknowledges it after processing: waiting, delayed, prefetched and in-flight messages
are all there. The StubBroker (unit tests) keeps them in its in-memory queues.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name

from portal.jobs.kinds import QUEUES


def _job_id(message: dramatiq.Message) -> int | None:
    args = message.args
    return args[0] if args and isinstance(args[0], int) else None


def _redis_job_ids(broker: RedisBroker) -> set[int]:
    found: set[int] = set()
    for queue in QUEUES:
        for name in (queue, dq_name(queue)):
            key = f"{broker.namespace}:{name}.msgs"
            for _message_id, data in broker.client.hscan_iter(key, count=1000):
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


def job_ids(broker: dramatiq.Broker) -> set[int] | None:
    """The ids of the jobs with a message in the broker; None when this broker cannot tell."""
    if isinstance(broker, RedisBroker):
        return _redis_job_ids(broker)
    if isinstance(broker, StubBroker):
        return _stub_job_ids(broker)
    return None

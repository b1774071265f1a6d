"""An empty queue's consumer polls again after a backoff capped by its timeout: the queues a
vendor waits on are capped shorter than the rest."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from portal.jobs.broker import PortalRedisBroker
from portal.jobs.kinds import QUEUES


@given(
    fast=st.sets(st.sampled_from(QUEUES)),
    fast_ms=st.integers(1, 500),
    worker_timeout=st.integers(1, 5000),
)
def test_fast_queues_are_polled_at_most_fast_ms_apart_and_others_keep_the_worker_timeout(
    fast, fast_ms, worker_timeout
):
    # No connection is made until a consumer fetches.
    broker = PortalRedisBroker(
        url="redis://127.0.0.1:1/0", middleware=[], fast_queues=tuple(fast), fast_ms=fast_ms
    )
    for queue in QUEUES:
        consumer = broker.consume(queue, prefetch=1, timeout=worker_timeout)
        expected = min(worker_timeout, fast_ms) if queue in fast else worker_timeout
        assert consumer.timeout == expected


def test_the_payments_queue_is_fast_by_default(app):
    assert app.config["JOB_FAST_POLL_QUEUES"] == ("contracts",)
    assert app.config["JOB_FAST_POLL_MS"] == 20

"""How a consumer that found its queue empty waits (``portal.jobs.broker.wait_plan``): on the
queue's doorbell for up to the idle wait, except where a token could not help."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from portal.jobs.broker import PortalRedisBroker, wait_plan
from portal.jobs.kinds import QUEUES


@given(
    held=st.integers(0, 2000),
    prefetch=st.integers(1, 1000),
    delays=st.booleans(),
    worker_timeout_s=st.floats(0.001, 5),
    idle_s=st.floats(0.001, 60),
)
def test_a_consumer_waits_on_the_bell_unless_a_token_could_not_help(
    held, prefetch, delays, worker_timeout_s, idle_s
):
    on_bell, seconds = wait_plan(
        held, prefetch, delays=delays, worker_timeout_s=worker_timeout_s, idle_s=idle_s
    )
    if held >= prefetch:  # full: it would take a token and leave the message where it is
        assert (on_bell, seconds) == (False, worker_timeout_s)
    elif delays and held:  # delayed messages in hand are moved when due: look again soon
        assert (on_bell, seconds) == (True, worker_timeout_s)
    else:
        assert (on_bell, seconds) == (True, idle_s)


@given(idle_ms=st.integers(1, 10_000), worker_timeout=st.integers(1, 5000))
def test_every_queue_gets_a_doorbell_consumer(idle_ms, worker_timeout):
    # No connection is made until a consumer fetches.
    broker = PortalRedisBroker(url="redis://127.0.0.1:1/0", middleware=[], idle_ms=idle_ms)
    for queue in QUEUES:
        for name in (queue, f"{queue}.DQ"):
            consumer = broker.consume(name, prefetch=4, timeout=worker_timeout)
            assert consumer.idle_s == max(idle_ms, worker_timeout) / 1000
            assert consumer.worker_timeout_s == worker_timeout / 1000
            assert consumer.delays is name.endswith(".DQ")
            assert consumer.bell == f"dramatiq:{name}.bell"


def test_an_idle_queue_waits_a_second_by_default(app):
    assert app.config["JOB_IDLE_WAIT_MS"] == 1000

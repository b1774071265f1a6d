"""Work a few items ahead in a thread: order kept, errors raised where they are consumed, and
the thread stopped and the source closed however the consumer leaves."""

from __future__ import annotations

import threading

import pytest

from portal.imports.ahead import Ahead


def _source(count: int, log: list, fail_at: int | None = None):
    try:
        for k in range(count):
            if k == fail_at:
                raise ValueError(f"bad item {k}")
            log.append(("made", k, threading.current_thread().name))
            yield k
    finally:
        log.append(("closed",))


def test_items_arrive_in_order_made_in_another_thread():
    log: list = []
    with Ahead(_source(50, log), depth=2, name="maker") as ahead:
        assert list(ahead) == list(range(50))
    assert {entry[2] for entry in log if entry[0] == "made"} == {"maker"}
    assert log[-1] == ("closed",)


def test_an_error_of_the_producer_is_raised_to_the_consumer():
    log: list = []
    seen = []
    with pytest.raises(ValueError, match="bad item 3"), Ahead(_source(10, log, 3)) as ahead:
        seen.extend(ahead)
    assert seen == [0, 1, 2]
    assert log[-1] == ("closed",)


def test_a_consumer_that_stops_early_stops_the_producer():
    log: list = []
    with pytest.raises(RuntimeError), Ahead(_source(10_000, log), depth=2) as ahead:
        for item in ahead:
            if item == 5:
                raise RuntimeError("the database said no")
    made = [entry for entry in log if entry[0] == "made"]
    assert len(made) < 20  # a few ahead, not the whole source
    assert log[-1] == ("closed",)
    assert not [t for t in threading.enumerate() if t.name == "ahead"]

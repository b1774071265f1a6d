"""Answers from the chain node kept for a while, one store per chain client.

A store belongs to one ``Web3`` client (one node, one app), never to the process: two apps in
one process talking to two chains (tests, a staging worker) cannot see each other's chain id or
fees. Values are computed outside the lock (an RPC must not serialise every thread), so two
threads may both ask the node once when an entry expires; the later answer wins, which is as
fresh as the earlier one.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class ChainCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[Hashable, tuple[object, float]] = {}

    def get(self, key: Hashable, max_age: float | None, compute: Callable[[], T]) -> T:
        """The stored value if younger than ``max_age`` seconds (None: kept for ever), else a
        fresh one from ``compute`` (an exception from it stores nothing)."""
        with self._lock:
            found = self._values.get(key)
        if found is not None and (max_age is None or self._clock() - found[1] < max_age):
            return found[0]  # type: ignore[return-value]
        value = compute()
        self.put(key, value)
        return value

    def peek(self, key: Hashable):
        with self._lock:
            found = self._values.get(key)
        return None if found is None else found[0]

    def put(self, key: Hashable, value) -> None:
        with self._lock:
            self._values[key] = (value, self._clock())

    def forget(self, key: Hashable | None = None) -> None:
        with self._lock:
            if key is None:
                self._values.clear()
            else:
                self._values.pop(key, None)


_stores: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_stores_guard = threading.Lock()


def of(w3) -> ChainCache:
    """The store of this chain client (made on first use, gone with the client)."""
    with _stores_guard:
        store = _stores.get(w3)
        if store is None:
            store = _stores[w3] = ChainCache()
        return store

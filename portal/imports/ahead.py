"""Running an iterator a few items ahead in a thread, so that its work overlaps the consumer's.

An import commit on PostgreSQL has two kinds of work of about the same size: Python preparing
rows (reading the checked rows, the duplicate check, encryption, formatting) and the database
inserting them (COPY, indexes, foreign-key checks). The database works in its own process, so
while the consumer waits on it (the wait releases the GIL) the producer can prepare the next
chunk.

Use it as a context manager: leaving the block, normally or by an exception, stops the thread,
then closes the iterator (its ``finally`` blocks run: files and connections it holds).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()


class Ahead(Generic[T]):
    def __init__(self, items: Iterator[T], depth: int = 2, name: str = "ahead"):
        self._items = items
        self._buffer: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Ahead[T]:
        self._thread.start()
        return self

    def __iter__(self) -> Iterator[T]:
        while True:
            item, error = self._buffer.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        while self._thread.is_alive():
            self._drain()  # a producer blocked on a full buffer sees the stop
            self._thread.join(0.05)
        close = getattr(self._items, "close", None)
        if close is not None:
            close()

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put((item, None)):
                    return
            self._put((_DONE, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put((_DONE, exc))

    def _put(self, entry: tuple) -> bool:
        while not self._stop.is_set():
            try:
                self._buffer.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _drain(self) -> None:
        try:
            while True:
                self._buffer.get_nowait()
        except queue.Empty:
            pass

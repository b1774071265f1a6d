"""Names of the kinds of background job and the queue each runs on.

Services enqueue by kind name; ``workers`` binds a handler to each kind. Keeping the table here
lets the web process send messages without importing any worker code.
"""

from __future__ import annotations

from dataclasses import dataclass

QUEUES = ("default", "imports", "contracts", "comms", "reports")


@dataclass(frozen=True)
class JobKind:
    name: str
    queue: str
    label: str
    max_attempts: int | None = None  # None: the configured default


KINDS: dict[str, JobKind] = {}


def register_kind(name: str, queue: str, label: str, max_attempts: int | None = None) -> JobKind:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    kind = JobKind(name, queue, label, max_attempts)
    KINDS[name] = kind
    return kind


DIAGNOSTIC = register_kind("system.diagnostic", "default", "Pipeline check")

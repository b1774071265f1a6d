"""What the distribution day's clients write down, and the figures made of it.

Kept apart from the clients so the arithmetic (in particular how a dashboard update is matched
to the redemption it shows) can be tested on made-up numbers.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from _data import summary_ms


@dataclass
class Errors:
    """Counted by kind; the first few messages of each kind are kept to say what went wrong."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, detail: str = "") -> None:
        self.counts[kind] += 1
        kept = self.examples.setdefault(kind, [])
        if detail and len(kept) < 3:
            kept.append(detail[:300])

    def merge(self, counts: dict[str, int], examples: dict[str, list[str]]) -> None:
        for kind, n in counts.items():
            self.counts[kind] += n
        for kind, texts in examples.items():
            kept = self.examples.setdefault(kind, [])
            kept.extend(texts[: max(0, 3 - len(kept))])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict:
        return {"total": self.total, "by_kind": dict(sorted(self.counts.items()))}


@dataclass
class Timings:
    """Seconds per label (page names, steps)."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, label: str, seconds: float) -> None:
        self.values.setdefault(label, []).append(seconds)

    def all(self) -> list[float]:
        return [v for values in self.values.values() for v in values]

    def summary(self) -> dict:
        return {
            "all": summary_ms(self.all()),
            **{k: summary_ms(v) for k, v in sorted(self.values.items())},
        }


def broadcast_latencies(
    confirmed_at: list[float], screens: list[list[tuple[float, float]]], horizon: float
) -> tuple[list[float], int]:
    """Seconds from each confirmation to each screen's update that can show it.

    ``confirmed_at``: when the worker emitted each redemption's "confirmed" (the ``ts`` the
    portal stamps on every live event, wall clock, right after the commit). ``screens``: per
    dashboard socket, the dashboard updates it received as ``(ts, arrived)`` (the update's own
    emit stamp and the wall-clock time the client got it), in arrival order.

    A screen shows a confirmation with the first update emitted after it (an update is read
    after the commit that asked for it, so one emitted later includes the confirmation): the
    latency is that update's arrival minus the confirmation's stamp. A screen that got no such
    update within ``horizon`` seconds of the stamp counts as a miss. Only the emit stamps are
    read, never the snapshot's fields, so a change of the dashboard's payload changes nothing.
    Returns (latencies, misses).
    """
    latencies: list[float] = []
    misses = 0
    for updates in screens:
        if not updates:
            misses += len(confirmed_at)
            continue
        ordered = sorted(updates)
        stamps = [ts for ts, _ in ordered]
        # The earliest arrival among updates emitted at or after each stamp (arrivals of later
        # updates can only be later, but a screen may get them out of order: take the minimum).
        earliest = [0.0] * len(ordered)
        best = float("inf")
        for i in range(len(ordered) - 1, -1, -1):
            best = min(best, ordered[i][1])
            earliest[i] = best
        for stamp in confirmed_at:
            i = bisect.bisect_left(stamps, stamp)
            if i == len(ordered) or earliest[i] - stamp > horizon:
                misses += 1
            else:
                latencies.append(max(0.0, earliest[i] - stamp))
    return latencies, misses


def fan_out(screens: list[list[tuple[float, float]]]) -> dict:
    """Per update (identified by its emit stamp): how many screens got it and how long from the
    first screen to the last; the spread shows the web process's cost of one broadcast."""
    arrivals: dict[float, list[float]] = {}
    for updates in screens:
        for ts, arrived in updates:
            arrivals.setdefault(ts, []).append(arrived)
    spreads = [max(a) - min(a) for a in arrivals.values()]
    reached = [len(a) for a in arrivals.values()]
    return {
        "updates": len(arrivals),
        "screens_reached_min": min(reached) if reached else 0,
        "screens_reached_max": max(reached) if reached else 0,
        "first_to_last_screen": summary_ms(spreads),
    }

"""What the worker's threads are doing during a bench's measured window.

``env()`` makes the stack's Python processes load ``bench/statement_counter/stack_sampler.py``
(through the folder's ``sitecustomize``); the Dramatiq processes then sample their threads'
stacks while ``start()``'s marker file exists. ``top()`` sums the samples of every worker
process by thread kind and folded stack, so a pool of threads waiting on one lock, a sleep or a
socket shows as one line with its share of the pool's time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from _statements import COUNTER


def env(folder: Path) -> dict[str, str]:
    where = folder / "stacks"
    where.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(p for p in (str(COUNTER), os.environ.get("PYTHONPATH", "")) if p)
    return {"BENCH_STACKS_DIR": str(where), "PYTHONPATH": path}


def start(folder: Path) -> None:
    (folder / "stacks" / "on").touch()


def stop(folder: Path) -> None:
    (folder / "stacks" / "on").unlink(missing_ok=True)


def read(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in (folder / "stacks").glob("*.stacks.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for key, n in data["counts"].items():
            counts[key] = counts.get(key, 0) + n
    return counts


def top(counts: dict[str, int], kind: str = "WorkerThread", n: int = 15) -> list[tuple[float, str]]:
    """The ``n`` commonest stacks of the ``kind`` threads, as (share of their samples, stack)."""
    mine = {k.split("|", 1)[1]: c for k, c in counts.items() if k.split("|", 1)[0] == kind}
    total = sum(mine.values()) or 1
    ranked = sorted(mine.items(), key=lambda item: -item[1])[:n]
    return [(round(100 * c / total, 1), stack) for stack, c in ranked]


def by_frame(counts: dict[str, int], kind: str = "WorkerThread", n: int = 15):
    """Per portal frame (anywhere on the stack): the share of the ``kind`` threads' samples in
    which it appears, the commonest first: what the pool's time is spent under."""
    under: dict[str, int] = {}
    total = 0
    for key, c in counts.items():
        thread, stack = key.split("|", 1)
        if thread != kind:
            continue
        total += c
        for frame in set(f.rsplit(":", 1)[0] for f in stack.split(";")):
            under[frame] = under.get(frame, 0) + c
    ranked = sorted(under.items(), key=lambda item: -item[1])[:n]
    return [(round(100 * c / max(total, 1), 1), frame) for frame, c in ranked]


def print_top(counts: dict[str, int], n: int = 15) -> None:
    print("  worker threads' time (sampled stacks), by function on the stack:")
    for share, frame in by_frame(counts, n=n):
        print(f"    {share:5.1f} %  {frame}")
    print("  commonest whole stacks:")
    for share, stack in top(counts, n=n):
        print(f"    {share:5.1f} %  {stack[-300:]}")

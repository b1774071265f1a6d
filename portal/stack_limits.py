"""The recursion limit and thread stack size every portal process runs with.

py-evm and py_ecc raise the interpreter's recursion limit when first imported (to 12,288 and
100,000), far beyond what a thread's C stack holds when C code recurses: json, pickle and repr
use 170-500 bytes of stack per level, so an 8 MiB stack overflows at about 16,000-65,000
levels and the process dies without a traceback. The portal's own contracts need only a few
EVM call frames, so the limit goes back to a value the stack holds with a wide margin, and
threads get a stack of known size rather than whatever ``ulimit -s`` gives. Runaway recursion
then ends as a ``RecursionError`` in one request or job, not as the death of every thread.

Greenlets (the gevent web worker) have no thread stack of their own: they run on the main
thread's, whose size is the soft ``RLIMIT_STACK`` (``ulimit -s``), not ``threading.stack_size``.
Linux checks that limit each time the main stack grows, so raising the soft limit here gives
every greenlet the same room as a thread, whatever the shell set (up to the hard limit).
"""

from __future__ import annotations

import importlib
import resource
import sys
import threading

# Python frames the embedded chain, Jinja and SQLAlchemy need with room to spare; at the
# worst measured cost per level (~500 bytes) this is under 2 MiB of stack.
RECURSION_LIMIT = 4000
# Request threads (gunicorn's pool), worker threads (Dramatiq) and the embedded server's.
THREAD_STACK_BYTES = 16 * 1024 * 1024
# Modules that raise the limit as a side effect of their first import.
_RAISERS = ("eth", "py_ecc")

_applied = False


def apply() -> None:
    """Import the modules that raise the limit, then set the limit and the stack size.

    Once per process: later imports of those modules are no-ops, and changing the limit while a
    test runner has raised it for its own bookkeeping would upset the runner.
    """
    global _applied
    if _applied:
        return
    for name in _RAISERS:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    sys.setrecursionlimit(RECURSION_LIMIT)
    threading.stack_size(THREAD_STACK_BYTES)
    _raise_main_stack(THREAD_STACK_BYTES)
    _applied = True


def _raise_main_stack(size: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if soft == resource.RLIM_INFINITY or soft >= size:
        return
    target = size if hard == resource.RLIM_INFINITY else min(size, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_STACK, (target, hard))

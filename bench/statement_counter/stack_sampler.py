"""Where a bench's Procfile processes' threads spend their wall time (``bench/_stacks.py``).

Imported by this folder's ``sitecustomize`` when ``BENCH_STACKS_DIR`` is set. A real thread of
its own looks at every other thread's stack (``sys._current_frames``) every
``BENCH_STACKS_EVERY_MS`` (10 by default) and counts one folded stack per thread: the
thread's kind (Dramatiq's by class, others by name without their number, so a pool's threads
add up), the frames of the portal's own code (``portal/``, ``workers/``) from the outermost in,
and the innermost frame whatever its file, which says what the thread is doing there (waiting
on a socket, a lock, ``time.sleep``). The counts go to ``<dir>/<pid>.stacks.json`` every 0.2 s;
samples are counted only while the file ``<dir>/on`` exists, so the bench measures its window
and not the start-up. Only real threads are seen: under gevent the web process's greenlets all
look like its hub, which is why the bench reads the worker's (``BENCH_STACKS_ONLY``: a word of
the sampled processes' command line).
"""

import json
import os
import re
import sys
import threading
import time

_DIR = os.environ.get("BENCH_STACKS_DIR")
_EVERY = float(os.environ.get("BENCH_STACKS_EVERY_MS", "10")) / 1000
_ONLY = os.environ.get("BENCH_STACKS_ONLY", "dramatiq")  # the processes sampled, by command
_OURS = (os.sep + "portal" + os.sep, os.sep + "workers" + os.sep)
_counts: dict[str, int] = {}
_samples = 0


def _short(frame) -> str:
    code = frame.f_code
    name = code.co_filename
    for mark in _OURS:
        at = name.rfind(mark)
        if at >= 0:
            name = name[at + 1 :]
            break
    else:
        name = name.rsplit(os.sep, 2)
        name = "/".join(name[-2:])
    return f"{name}:{code.co_name}:{frame.f_lineno}"


def _fold(frame) -> str:
    ours = []
    leaf = frame
    while frame is not None:
        filename = frame.f_code.co_filename
        if any(mark in filename for mark in _OURS):
            ours.append(_short(frame))
        frame = frame.f_back
    ours.reverse()
    inner = _short(leaf)
    if not ours or ours[-1] != inner:
        ours.append(inner)
    return ";".join(ours[-12:])


def _sample(me: int, names: dict[int, str]) -> None:
    global _samples
    _samples += 1
    for ident, frame in sys._current_frames().items():
        if ident == me:
            continue
        name = names.get(ident) or "?"
        key = f"{name}|{_fold(frame)}"
        _counts[key] = _counts.get(key, 0) + 1


def _name(thread: threading.Thread) -> str:
    """A pool's threads under one name: Dramatiq's by class (and queue), others without their
    number."""
    kind = type(thread).__name__
    if kind == "ConsumerThread":
        return f"ConsumerThread:{getattr(thread, 'queue_name', '?')}"
    if kind != "Thread":
        return kind
    return re.sub(r"[-_ ]?\d+( \(.*\))?$", "", thread.name)


def _run() -> None:
    time.sleep(1.0)
    if _ONLY not in " ".join(sys.argv):
        return  # another of the stack's processes (the web's gevent hub hides its greenlets)
    me = threading.get_ident()
    on = os.path.join(_DIR, "on")
    path = os.path.join(_DIR, f"{os.getpid()}.stacks.json")
    written = time.monotonic()
    while True:
        time.sleep(_EVERY)
        if os.path.exists(on):
            names = {t.ident: _name(t) for t in threading.enumerate()}
            _sample(me, names)
        if time.monotonic() - written >= 0.2:
            written = time.monotonic()
            data = {"argv": sys.argv, "samples": _samples, "every_s": _EVERY, "counts": _counts}
            with open(path + ".tmp", "w") as out:
                json.dump(data, out)
            os.replace(path + ".tmp", path)


def _start_thread() -> None:
    threading.Thread(target=_run, name="bench-stacks", daemon=True).start()


def start() -> None:
    # A real thread: created before gevent patches the standard library (if it ever does); and
    # one in every forked child (Dramatiq's worker processes), where the parent's is gone.
    _start_thread()
    os.register_at_fork(after_in_child=_start_thread)

"""CPU-heavy work of a request, run off gevent's loop.

Under the gevent worker every connection of the process shares one thread: a 60 ms password
hash or a PDF built in a request would stall every socket and page for that long, a sign-in
storm for seconds. ``run`` hands such a function to gevent's pool of real threads and lets the
calling greenlet wait cooperatively; scrypt (hashlib) releases the GIL, so hashes even run in
parallel with the loop, and pure-Python work is at least sliced by the interpreter's switch
interval instead of running to completion. Outside gevent (threading mode, workers, tests)
the function simply runs in the caller's thread.

The function runs without the caller's Flask contexts: give it values (bytes, strings, paths),
never ``db.session``, ``request`` or ``current_app`` (a session there would be a second
database connection for the request). Exceptions come back to the caller as they were raised.
Work that is long in itself belongs in a job, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from portal.cooperative import gevent_patched

T = TypeVar("T")


def offloading() -> bool:
    """Whether ``run`` hands work to gevent's thread pool in this process."""
    return gevent_patched("threading")


def run(fn: Callable[..., T], *args, **kwargs) -> T:
    """``fn(*args, **kwargs)``, off the event loop when there is one."""
    if not offloading():
        return fn(*args, **kwargs)
    import gevent

    done, value = gevent.get_hub().threadpool.apply(_captured, (fn, args, kwargs))
    if not done:
        raise value  # its traceback still shows where in ``fn`` it was raised
    return value


def _captured(fn, args, kwargs):
    """gevent's pool prints every exception of a task to stderr: a refused weak password is an
    answer to the caller, not an error to log. Carry it back instead."""
    try:
        return True, fn(*args, **kwargs)
    except Exception as exc:
        return False, exc

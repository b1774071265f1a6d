"""Deep input under gevent ends in a ``RecursionError``, not in the death of the web worker.

Greenlets run on the main thread's stack (``ulimit -s``), not on a thread stack of
``threading.stack_size``: ``stack_limits.apply`` raises that limit too. Checked in a fresh,
patched interpreter started with a 512 KiB soft stack limit, where C recursion to the
recursion limit (the JSON decoder, ``repr``) would otherwise overrun the stack (a segfault).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

from tests.support.services import REPO_ROOT

PROBE = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json, resource
    import gevent
    from portal import stack_limits

    stack_limits.apply()

    def decode():
        try:
            json.loads("[" * 100_000 + "]" * 100_000)
        except RecursionError:
            return "RecursionError"
        return "decoded"

    def represent():
        nested = []
        for _ in range(100_000):
            nested = [nested]
        try:
            repr(nested)
        except RecursionError:
            return "RecursionError"
        return "represented"

    print(gevent.spawn(decode).get(), gevent.spawn(represent).get())
    print(resource.getrlimit(resource.RLIMIT_STACK)[0])
""")

SMALL = 512 * 1024


def _small_stack():
    _, hard = resource.getrlimit(resource.RLIMIT_STACK)
    resource.setrlimit(resource.RLIMIT_STACK, (SMALL, hard))


def test_deep_input_in_a_greenlet_is_a_recursion_error_on_a_small_stack():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_small_stack,
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    lines = result.stdout.split()
    assert lines[:2] == ["RecursionError", "RecursionError"]
    soft = int(lines[2])
    assert soft == resource.RLIM_INFINITY or soft > SMALL

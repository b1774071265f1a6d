"""CPU-heavy work of a request leaves gevent's loop free (``portal.offload``).

Under gevent a greenlet ticks every 5 ms; the longest gap between its ticks while the work runs
is how long every other connection of the process would have waited. Measured in a fresh,
patched interpreter; the same work run inline is the comparison, in the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from portal import offload
from tests.support.services import REPO_ROOT

PROBE = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json, time
    import gevent
    from werkzeug.security import generate_password_hash
    from portal import offload
    from portal.accounts import passwords
    from portal.cards.pdf import CardFace, find_font
    from portal.cards.services import _one_card

    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.005)

    gevent.spawn(ticker)
    gevent.sleep(0.05)

    def longest_pause(fn):
        ticks.clear()
        start = time.monotonic()
        fn()
        gevent.sleep(0.02)  # the ticker's next tick closes the last gap
        points = [start] + [t for t in ticks if t >= start]
        return max(b - a for a, b in zip(points, points[1:]))

    stored = passwords.dummy_hash()
    face = CardFace(project="P", ref="B-1", token="T" * 16, hint="TT", issued="2026-01-01")
    figures = {
        "offloading": offload.offloading(),
        "inline_hash": longest_pause(lambda: generate_password_hash("x" * 20, method="scrypt")),
        "verify": longest_pause(lambda: passwords.verify(stored, "a wrong password!")),
        "hash": longest_pause(lambda: passwords.hash_password("violet anchor drifts slowly 42")),
        "inline_card": longest_pause(lambda: _one_card(face, find_font(), "t")),
        "card": longest_pause(lambda: offload.run(_one_card, face, find_font(), "t")),
    }
    try:
        passwords.hash_password("password1234")
    except passwords.WeakPassword as exc:
        figures["error"] = type(exc).__name__
    print(json.dumps(figures))
""")


@pytest.fixture(scope="module")
def figures() -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]  # gevent logs none
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_outside_gevent_the_function_runs_inline():
    assert offload.offloading() is False
    assert offload.run(divmod, 7, 2) == (3, 1)
    with pytest.raises(ZeroDivisionError):
        offload.run(divmod, 1, 0)


def test_password_hashing_does_not_pause_the_loop(figures):
    assert figures["offloading"] is True
    # scrypt inline holds the loop for its whole run (tens of milliseconds)...
    assert figures["inline_hash"] > 0.03, figures
    # ...offloaded, the loop keeps ticking: every pause well below one hash.
    assert figures["verify"] < figures["inline_hash"] / 2, figures
    assert figures["hash"] < figures["inline_hash"] / 2 + 0.02, figures


def test_card_pdf_is_made_off_the_loop(figures):
    assert figures["card"] <= max(figures["inline_card"] / 2, 0.03), figures


def test_errors_come_back_to_the_caller_unlogged(figures):
    assert figures["error"] == "WeakPassword"

"""How many HTTP requests this process is serving at this moment.

A web process under gevent is one thread on one core: work moved into its requests (signing a
redemption's transfer, say) makes each request faster while the process is idle, and every
request slower once it is the busiest process of the machine. Callers that can put work either
in the request or in a job ask ``in_flight`` and choose. Socket.IO connections are not counted:
Flask-SocketIO answers them before the Flask app, whose request hooks count here.
"""

from __future__ import annotations

import threading

from flask import Flask, g

_lock = threading.Lock()
_serving = 0


def in_flight() -> int:
    """Requests being served by this process now, the caller's own included."""
    return _serving


def _started() -> None:
    global _serving
    with _lock:
        _serving += 1
    g.counted_in_flight = True


def _ended(_exc: BaseException | None) -> None:
    global _serving
    if g.pop("counted_in_flight", False):
        with _lock:
            _serving -= 1


def init_app(app: Flask) -> None:
    # First of the before-request hooks: one that answers early (a rate limit) leaves no hole
    # between the count and its teardown, which every request runs.
    app.before_request_funcs.setdefault(None, []).insert(0, _started)
    app.teardown_request(_ended)

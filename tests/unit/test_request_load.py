"""The count of requests a process is serving (``portal.request_load``): every request is
counted once and uncounted at its end, whatever answered it, from any number of threads."""

from __future__ import annotations

import threading

from flask import abort
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal import request_load


def open_request(app):
    ctx = app.test_request_context("/")
    ctx.push()
    app.preprocess_request()
    return ctx


def close_request(app, ctx) -> None:
    app.do_teardown_request()
    ctx.pop()


# The app is only read from: sharing it between examples is what a process does.
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(opened=st.integers(0, 12), closed=st.data())
def test_requests_in_flight_are_counted_across_threads(app, opened, closed):
    before = request_load.in_flight()
    ready, finish = threading.Barrier(opened + 1), threading.Event()
    done = threading.Barrier(opened + 1)
    to_close = closed.draw(st.integers(0, opened))
    seen = []

    def serve(n):
        ctx = open_request(app)
        ready.wait(5)
        if n < to_close:
            close_request(app, ctx)
        done.wait(5)
        finish.wait(5)
        if n >= to_close:
            close_request(app, ctx)

    threads = [threading.Thread(target=serve, args=(n,)) for n in range(opened)]
    for t in threads:
        t.start()
    ready.wait(5)
    done.wait(5)
    seen.append(request_load.in_flight())
    finish.set()
    for t in threads:
        t.join(5)
    assert seen == [before + opened - to_close]
    assert request_load.in_flight() == before


def test_a_request_answered_by_an_earlier_hook_is_still_uncounted(app):
    before = request_load.in_flight()

    def refuse():
        abort(429)

    app.before_request_funcs[None].append(refuse)
    try:
        with app.test_client() as client:
            assert client.get("/").status_code == 429
    finally:
        app.before_request_funcs[None].remove(refuse)
    assert request_load.in_flight() == before

"""gunicorn's settings file (the Procfile names it; gunicorn also reads it from here by default).

Command-line flags in the Procfile (worker class, workers, bind) still apply; this adds what has
no flag, and the gevent worker's connection budget.

Nothing from the portal is imported here at module level: this file runs in gunicorn's master,
before the gevent worker patches the standard library. The app (and psycopg, Redis, web3 with
it) must be imported only after that patch, in the worker, or psycopg would choose a wait that
blocks the loop (the app refuses to start then, see portal/cooperative.py). For the same reason
the Procfile does not use --preload.
"""

import os
import resource

# Under the gevent worker each open connection (a Socket.IO WebSocket, a long poll, a page
# request) is one greenlet of this pool: 2,000+ live screens plus the requests of staff pages.
worker_connections = int(os.environ.get("WEB_WORKER_CONNECTIONS", "5000"))

# Seconds an idle kept-alive connection stays open. gunicorn's default (2 s) closes it on a timer
# that, while the loop is busy with a request's CPU work, fires after the client's next request
# has already arrived: the connection is reset under that request (a POST is not retried; a
# balancer answers 502). Longer than a balancer's idle timeout (60 s is common), so the balancer
# is the side that closes; an idle connection costs only a parked greenlet.
keepalive = int(os.environ.get("WEB_KEEPALIVE_SECONDS", "75"))


def on_starting(server):
    """Raise the open-files limit to what the connection budget needs (each socket is a file),
    up to the hard limit; say so when the hard limit is lower."""
    needed = worker_connections * max(1, server.cfg.workers) + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        server.log.warning(
            "open-files limit %s is below the %s connections configured (ulimit -n)", hard, needed
        )


def post_worker_init(worker):
    """In the worker, after the patch and the app load: drop the banner; check the mode."""
    from portal.serving import check_worker, hide_gunicorn_banner

    hide_gunicorn_banner()
    check_worker(worker)

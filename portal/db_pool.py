"""The database pool of a process, sized from what runs in it at once.

The rule: every thread (or greenlet) that serves a request or runs a job holds at most ONE
connection, the one of its session, for the whole request or job. Nothing takes a second one
while the first is held (``portal.db_guard`` fails the tests that would), so a full pool only
makes a request wait for a connection that another request is about to give back; it can never
deadlock. Sizing the pool to the concurrency makes that wait zero:

- web: ``WEB_THREADS`` (gunicorn ``--threads`` in the Procfile, or the number of greenlets
  allowed to use the database at once under gevent) + the dashboard publisher thread + the
  jobs' lease watch (``portal.jobs.lease_watch``);
- worker: the Dramatiq worker threads (``WORKER_THREADS``, the Procfile's ``--threads``) + the
  job sweeper + the lease heartbeat + the dashboard publisher + one spare (an import's
  read-ahead thread; a second import at the same time reads inline instead of waiting);
- ``flask serve`` (embedded): both.

``DB_POOL_SIZE`` overrides the computed size (e.g. to keep many processes under the server's
``max_connections``): requests then queue for a connection instead of running in parallel,
which is slower but never an error while a connection comes back within ``DB_POOL_TIMEOUT``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

log = logging.getLogger(__name__)

# Threads of their own that use the database, besides the ones serving requests or jobs.
WEB_HELPERS = 2  # the dashboard publisher, the jobs' lease watch
# The job sweeper, the lease heartbeat, the dashboard publisher, and one spare connection
# that an import may use to read ahead in a thread of its own (``spare``).
WORKER_HELPERS = 4
_SPARE = threading.BoundedSemaphore(1)


def connections_needed(config, role: str, *, worker_threads: int | None = None) -> int:
    threads = worker_threads or config["WORKER_THREADS"]
    if role == "worker":
        return threads + WORKER_HELPERS
    needed = config["WEB_THREADS"] + WEB_HELPERS
    if role == "embedded":  # web and workers in one process (`flask serve`)
        needed += threads + WORKER_HELPERS - WEB_HELPERS
    return needed


def configure(app: Flask) -> None:
    """Put the pool size into the engine options (before Flask-SQLAlchemy builds the engine)."""
    cfg = app.config
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return  # SQLite: one file, its own pool classes; the size does not apply
    needed = connections_needed(cfg, cfg["ROLE"])
    size = cfg.get("DB_POOL_SIZE") or needed
    if size < needed:
        log.warning(
            "DB_POOL_SIZE=%s is below the %s this %s process may use at once: requests and "
            "jobs will queue for a connection",
            size,
            needed,
            cfg["ROLE"],
        )
    options = dict(cfg.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if "pool_size" in options:
        return  # engine options given in full (a test's own pool): they are the caller's
    options["pool_size"] = size
    # No overflow: the size is the promise made to the database server's max_connections.
    options.setdefault("max_overflow", 0)
    options.setdefault("pool_timeout", cfg["DB_POOL_TIMEOUT"])
    cfg["SQLALCHEMY_ENGINE_OPTIONS"] = options


def check_worker_pool(app: Flask, worker_threads: int) -> None:
    """At worker boot: the Dramatiq command's ``--threads`` is known only now. A pool smaller
    than the threads is refused unless DB_POOL_SIZE was set on purpose."""
    cfg = app.config
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") or cfg.get("DB_POOL_SIZE"):
        return
    needed = connections_needed(cfg, cfg["ROLE"], worker_threads=worker_threads)
    size = cfg["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_size", 0)
    if size < needed:
        raise RuntimeError(
            f"The worker runs {worker_threads} threads and needs {needed} database "
            f"connections, but its pool has {size}: set WORKER_THREADS to the --threads of "
            "the dramatiq command (or DB_POOL_SIZE on purpose)."
        )


@contextmanager
def spare() -> Iterator[bool]:
    """The process's one spare connection, if free (True): counted in the pool, so a job
    that uses it in a helper thread never waits for the pool while holding its own."""
    taken = _SPARE.acquire(blocking=False)
    try:
        yield taken
    finally:
        if taken:
            _SPARE.release()


def check_web_pool(app: Flask, concurrency: int) -> None:
    """For the web server's start-up (e.g. gunicorn's ``post_worker_init`` with
    ``worker.cfg.threads``, or the gevent DB concurrency limit): refuse a pool smaller than
    the requests served at once, unless DB_POOL_SIZE was set on purpose."""
    cfg = app.config
    if cfg["SQLALCHEMY_DATABASE_URI"].startswith("sqlite") or cfg.get("DB_POOL_SIZE"):
        return
    needed = concurrency + WEB_HELPERS
    size = cfg["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_size", 0)
    if size < needed:
        raise RuntimeError(
            f"The web process serves {concurrency} requests at once and needs {needed} "
            f"database connections, but its pool has {size}: set WEB_THREADS to the server's "
            "concurrency (or DB_POOL_SIZE on purpose)."
        )

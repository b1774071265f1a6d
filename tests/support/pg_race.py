"""Races on PostgreSQL from threads: an app of its own on a module's database, threads released
together by a barrier, each acting in its own session (hence its own connection).

The tests that prove "exactly once" under real concurrency share this harness; what each one
races, and what it asserts, stays in the test.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# A contender's small delay after the start line, drawn per seed so a failing interleaving can
# be replayed: mostly none, sometimes enough to let another thread's statement go first.
DELAYS = (0, 0, 0.001, 0.003, 0.01)


def app_settings(database_url: str, redis_db, portal_secrets, tmp_path_factory) -> dict:
    """What every in-process test app needs: its database, the real Redis broker, the secrets,
    an instance folder of its own, rate limits kept in memory."""
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_db.url,
        "BROKER": "redis",
        "SECRET_KEY": portal_secrets["SECRET_KEY"],
        "PII_KEY": portal_secrets["PII_KEY"],
        "INSTANCE_DIR": str(tmp_path_factory.mktemp("instance")),
        "RATELIMIT_STORAGE_URI": "memory://",
    }


@contextmanager
def race_app(
    pg_url: str,
    redis_db,
    portal_secrets,
    tmp_path_factory,
    *,
    role: str = "worker",
    pool_size: int | None = None,
    **overrides,
) -> Iterator:
    """An app on ``pg_url`` with the real Redis broker and the given settings (``pool_size``:
    a pre-pinged pool of that size); its pool is disposed and its broker closed on exit, so a
    module gives its connections back when done."""
    from config import Config
    from portal import create_app
    from portal.extensions import db

    options = app_settings(pg_url, redis_db, portal_secrets, tmp_path_factory)
    if pool_size is not None:
        options["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True, "pool_size": pool_size}
    app = create_app(Config, role=role, **{**options, **overrides})
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        app.extensions["dramatiq_broker"].close()


def race(
    count: int,
    contender: Callable[[int, Callable[[], None]], object],
    *,
    seed: int | None = None,
    barrier_timeout: float = 60,
    join_seconds: float = 120,
    what: str = "a thread",
) -> list:
    """Run ``contender(i, go)`` in ``count`` threads; their results (or exceptions), in order.

    A contender gets ready (its connection, a signed-in client), then calls ``go()``: that waits
    for all the others to be ready and, with a ``seed``, for the contender's own small delay.
    """
    barrier = threading.Barrier(count, timeout=barrier_timeout)
    delays = random.Random(seed).choices(DELAYS, k=count) if seed is not None else None
    results: list = [None] * count

    def run(i: int) -> None:
        def go() -> None:
            barrier.wait()
            if delays is not None:
                time.sleep(delays[i])

        try:
            results[i] = contender(i, go)
        except Exception as exc:  # reported by the assertions of the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(join_seconds)
    assert not any(t.is_alive() for t in threads), f"{what} hung"
    return results


def in_own_session(app, act: Callable[[], object]) -> object:
    """``act()`` in an app context of its own, committed after; rolled back (and re-raised) on
    an exception; the session, and with it the thread's connection, always given back."""
    from portal.extensions import db

    with app.app_context():
        try:
            result = act()
            db.session.commit()
            return result
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()


def wait_for(app, check: Callable[[], object], what: str, timeout: float, every: float = 0.2):
    """Poll ``check()`` in a fresh session until it returns something true; that value."""
    from portal.extensions import db

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            try:
                found = check()
            finally:
                db.session.remove()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")

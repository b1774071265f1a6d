#!/usr/bin/env python3
"""``make test``: start what the tests need, run pytest, stop what was started (by PID).

Redis and PostgreSQL are found or started once (``tests/support/services.py``) and handed to
pytest as ``TEST_REDIS_URL`` / ``TEST_PG_URL``; a service that cannot be had is reported, and the
tests needing it skip (which fails the run when ``CI`` is true, see ``tests/support/ci.py``).

Arguments are passed to pytest: ``tests/support/run_tests.py tests/integration -x``. The run is
split over ``TEST_WORKERS`` (default 2) pytest-xdist processes, a test file per process at a time.

Exit status: pytest's, except "no tests collected" (5), which is an error under ``CI=true``
and only a warning otherwise. When ``PYTEST_EXIT_FILE`` is set, pytest's own status is written
there (``.ci/run`` reads it, since ``make`` turns every failure into 2).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from tests.support import ci, services  # noqa: E402

NO_TESTS_COLLECTED = 5


def _say(message: str) -> None:
    print(f"run_tests: {message}", file=sys.stderr, flush=True)


def _workers(argv: list[str]) -> list[str]:
    """pytest-xdist options for ``TEST_WORKERS`` processes (default 2; 1 runs in this process),
    each test file kept whole on one of them (its module-scoped stacks start once). Most of the
    suite waits on processes, browsers and chains rather than computing, so two runners halve
    its time on two cores: one took 67-77 minutes of CI's 90."""
    if any(a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in argv):
        return []
    count = int(os.environ.get("TEST_WORKERS", "2") or 0)
    return ["-n", str(count), "--dist", "loadfile"] if count > 1 else []


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    started: list[services.RedisService | services.PostgresService] = []
    try:
        try:
            redis = services.find_or_start_redis()
            started.append(redis)
            env["TEST_REDIS_URL"] = redis.url
            _say(f"Redis: {redis.url} ({redis.how})")
        except services.Unavailable as exc:
            _say(f"Redis: unavailable, tests that need it will skip: {exc}")
        try:
            pg = services.find_or_start_postgres()
            started.append(pg)
            env["TEST_PG_URL"] = pg.admin_url
            _say(f"PostgreSQL: {pg.admin_url} ({pg.how})")
        except services.Unavailable as exc:
            _say(f"PostgreSQL: unavailable, tests that need it will skip: {exc}")
        if ci.ci_enabled():
            _say("CI is true: a skipped integration or browser test fails the run")

        command = [sys.executable, "-m", "pytest", "-p", "tests.support.ci", *_workers(argv), *argv]
        child = subprocess.Popen(command, env=env, cwd=REPO_ROOT)
        # Ctrl-C reaches pytest through the terminal; a SIGTERM to us is passed on to it.
        signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:
                continue  # pytest got the same SIGINT; wait for it to finish its teardown
    finally:
        for service in reversed(started):
            service.stop()

    if os.environ.get("PYTEST_EXIT_FILE"):
        Path(os.environ["PYTEST_EXIT_FILE"]).write_text(f"{code}\n")
    if code == NO_TESTS_COLLECTED:
        if ci.ci_enabled():
            _say("pytest collected no tests: under CI that is a failure (nothing was checked)")
            return code
        _say("pytest collected no tests (exit 5); not an error outside CI")
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

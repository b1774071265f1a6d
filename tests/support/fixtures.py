"""Fixtures for tests against real services, shared by tests/integration and tests/browser.

Registered for the whole suite from the root conftest (``pytest_plugins``), so each session-scoped
service is found or started once. A test that cannot get its service is skipped with the reason;
under ``CI=true`` that skip fails the run (``tests/support/ci.py``).
"""

from __future__ import annotations

import fcntl
import gc
import os
import tempfile
from pathlib import Path

import pytest

from tests.support import services, stack


# PostgreSQL serves 100 connections by default. A module marked ``pg_heavy`` starts the
# production processes on it, or drives dozens of threads at it, and takes most of them; the
# suite runs in several pytest-xdist processes, and such a module beside another PostgreSQL
# module ran the server out of connections ("too many clients"). So, across processes, through
# one file lock: a ``pg_heavy`` module holds it exclusively, any other module that uses
# PostgreSQL (its tests need ``pg_service``) holds it shared, and modules without PostgreSQL
# (most unit and browser tests) do not take it. The kernel lets a dead holder's lock go.
def _heavy_lock() -> Path:
    default = Path(tempfile.gettempdir()) / "portal-tests-pg-heavy.lock"
    return Path(os.environ.get("PORTAL_TESTS_HEAVY_LOCK") or default)


_POSTGRES_MODULES = pytest.StashKey[frozenset]()


def _postgres_turn(request) -> int | None:
    if request.node.get_closest_marker("pg_heavy") is not None:
        return fcntl.LOCK_EX
    stash = request.session.stash
    if _POSTGRES_MODULES not in stash:  # once a session, not a walk of every item per module
        stash[_POSTGRES_MODULES] = frozenset(
            item.nodeid.split("::", 1)[0]
            for item in request.session.items
            if "pg_service" in item.fixturenames
        )
    return fcntl.LOCK_SH if request.node.nodeid in stash[_POSTGRES_MODULES] else None


@pytest.fixture(scope="module", autouse=True)
def _postgres_users_take_turns(request):
    """Autouse and module-scoped, so it is set up before the module's own module-scoped stacks
    and let go only after their teardown."""
    turn = _postgres_turn(request)
    if turn is None:
        yield
        return
    with open(_heavy_lock(), "a") as handle:
        fcntl.flock(handle, turn)
        try:
            yield
        finally:
            _close_idle_postgres_connections()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _close_idle_postgres_connections() -> None:
    """Apps made by session-scoped factories outlive their module, and so do their pools' idle
    connections: 9–12 left open after five PostgreSQL modules in one process, about 60 across
    two xdist processes by the end of the suite, which left a ``pg_heavy`` module too few. A
    disposed engine closes the connections it holds and opens new ones if used again. Only in
    xdist processes: a one-process run keeps what was measured in CI before."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    from sqlalchemy.engine import Engine

    for thing in gc.get_objects():
        if isinstance(thing, Engine) and thing.dialect.name == "postgresql":
            thing.dispose()


@pytest.fixture(scope="session")
def redis_service():
    try:
        service = services.find_or_start_redis()
    except services.Unavailable as exc:
        pytest.skip(f"Redis is not available: {exc}")
    yield service
    service.stop()


@pytest.fixture(scope="session")
def redis_db(redis_service):
    """A claimed, empty Redis database (1..15) for this session; emptied again at the end."""
    try:
        claimed = services.claim_redis_db(redis_service.url)
    except services.Unavailable as exc:
        pytest.skip(str(exc))
    yield claimed
    claimed.release()


@pytest.fixture(scope="session")
def pg_service():
    try:
        service = services.find_or_start_postgres()
    except services.Unavailable as exc:
        pytest.skip(str(exc))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def portal_secrets():
    return services.make_secrets()


@pytest.fixture(scope="session")
def database_factory(pg_service, redis_db, portal_secrets, tmp_path_factory):
    """Make a fresh PostgreSQL database migrated with ``flask db upgrade``; all are dropped."""
    made: list[str] = []

    def make(prefix: str = "portal_it", migrate: bool = True) -> str:
        name = pg_service.create_database(prefix)
        made.append(name)
        url = pg_service.sqlalchemy_url(name)
        if not migrate:
            return url
        env = stack.portal_env(
            database_url=url,
            redis_url=redis_db.url,
            instance_dir=tmp_path_factory.mktemp("instance"),
            secrets=portal_secrets,
        )
        stack.migrate(env)
        return url

    yield make
    for name in made:
        pg_service.drop_database(name)


@pytest.fixture(scope="session")
def sqlite_factory(redis_db, portal_secrets, tmp_path_factory):
    """Make a fresh SQLite file database migrated with ``flask db upgrade``."""

    def make(migrate: bool = True) -> str:
        folder = tmp_path_factory.mktemp("sqlite")
        url = f"sqlite:///{folder / 'portal.db'}"
        if not migrate:
            return url
        env = stack.portal_env(
            database_url=url,
            redis_url=redis_db.url,
            instance_dir=folder / "instance",
            secrets=portal_secrets,
        )
        stack.migrate(env)
        return url

    return make


@pytest.fixture(scope="session")
def anvil_binary():
    """anvil installed (for a command that starts its own node, such as a benchmark)."""
    from tests.support.anvil import ensure_installed

    try:
        return ensure_installed()
    except services.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def anvil_node(tmp_path_factory):
    """A local JSON-RPC chain (anvil) for the session, stopped by PID at the end."""
    from tests.support.anvil import Anvil

    try:
        node = Anvil(log_dir=tmp_path_factory.mktemp("anvil"))
    except services.Unavailable as exc:
        pytest.skip(str(exc))
    node.start()
    try:
        node.wait_ready()
        yield node
    finally:
        node.stop()

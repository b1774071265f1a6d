"""Fixtures for tests against real services: PostgreSQL, Redis, and the portal as processes.

Services come from the environment the test runner exports (``TEST_PG_URL``, ``TEST_REDIS_URL``)
or are found/started here (see ``tests/support/services.py``). A test that cannot get its
service is skipped with the reason, and under ``CI=true`` that skip fails the run
(``tests/support/ci.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ci, services, stack


def pytest_configure(config):
    ci.register(config)


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)


# --------------------------------------------------------------------------- services


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


# --------------------------------------------------------------------------- in-process app


@pytest.fixture(scope="session")
def app_factory(redis_db, portal_secrets, tmp_path_factory):
    """Build a worker-role app on a given database with the real Redis broker.

    The worker role emits Socket.IO events through Redis, as the Dramatiq processes do.
    """
    from config import Config

    made = []

    def make(database_url: str, **overrides):
        from portal import create_app

        app = create_app(
            Config,
            role="worker",
            SQLALCHEMY_DATABASE_URI=database_url,
            SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": True, "pool_size": 10},
            REDIS_URL=redis_db.url,
            BROKER="redis",
            SECRET_KEY=portal_secrets["SECRET_KEY"],
            PII_KEY=portal_secrets["PII_KEY"],
            INSTANCE_DIR=str(tmp_path_factory.mktemp("instance")),
            RATELIMIT_STORAGE_URI="memory://",
            **overrides,
        )
        made.append(app)
        return app

    yield make
    from portal.extensions import db

    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        broker = app.extensions.get("dramatiq_broker")
        if broker is not None:
            broker.close()


@pytest.fixture(scope="module")
def pg_url(database_factory):
    """One migrated PostgreSQL database for a test module."""
    return database_factory()

"""Fixtures for tests against real services: PostgreSQL, Redis, and the portal as processes.

Services come from the environment the test runner exports (``TEST_PG_URL``, ``TEST_REDIS_URL``)
or are found/started here (see ``tests/support/services.py``). A test that cannot get its
service is skipped with the reason, and under ``CI=true`` that skip fails the run
(``tests/support/ci.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ci, pg_race


def pytest_configure(config):
    ci.register(config)


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.integration)


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

        options = {
            **pg_race.app_settings(database_url, redis_db, portal_secrets, tmp_path_factory),
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "pool_size": 10},
            "DB_CONNECTION_GUARD": "raise",
        }
        app = create_app(Config, role="worker", **{**options, **overrides})
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


@pytest.fixture(scope="module")
def race_app(pg_url, redis_db, portal_secrets, tmp_path_factory):
    """``with race_app(**settings) as app``: an app of the module's own on its database, given
    back (pool disposed, broker closed) at the end of the block (``tests/support/pg_race.py``)."""

    def make(**settings):
        return pg_race.race_app(pg_url, redis_db, portal_secrets, tmp_path_factory, **settings)

    return make

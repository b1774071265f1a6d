"""The pool is sized from what runs at once in the process, and a mismatch is refused."""

from __future__ import annotations

import pytest

from config import Config
from portal import db_pool


def _cfg(**values):
    base = {
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://x@127.0.0.1/db",
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "WEB_THREADS": 50,
        "WORKER_THREADS": 8,
        "DB_POOL_SIZE": 0,
        "DB_POOL_TIMEOUT": 30,
    }
    return base | values


class _App:
    def __init__(self, **values):
        self.config = _cfg(**values)


@pytest.mark.parametrize(
    ("role", "expected"),
    [("web", 50 + db_pool.WEB_HELPERS), ("worker", 8 + db_pool.WORKER_HELPERS)],
)
def test_pool_size_follows_the_role_concurrency(role, expected):
    app = _App(ROLE=role)
    db_pool.configure(app)
    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["pool_size"] == expected
    assert options["max_overflow"] == 0
    assert options["pool_pre_ping"] is True


def test_an_explicit_size_wins():
    app = _App(ROLE="web", DB_POOL_SIZE=16)
    db_pool.configure(app)
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_size"] == 16
    db_pool.check_web_pool(app, 64)  # on purpose: requests queue, no error


def test_sqlite_is_left_alone():
    app = _App(ROLE="web", SQLALCHEMY_DATABASE_URI="sqlite://")
    db_pool.configure(app)
    assert "pool_size" not in app.config["SQLALCHEMY_ENGINE_OPTIONS"]


def test_a_worker_with_more_threads_than_its_pool_is_refused():
    app = _App(ROLE="worker", WORKER_THREADS=4)
    db_pool.configure(app)
    db_pool.check_worker_pool(app, 4)
    with pytest.raises(RuntimeError, match="set WORKER_THREADS"):
        db_pool.check_worker_pool(app, 16)


def test_a_web_server_with_more_threads_than_its_pool_is_refused():
    app = _App(ROLE="web", WEB_THREADS=20)
    db_pool.configure(app)
    db_pool.check_web_pool(app, 20)
    with pytest.raises(RuntimeError, match="set WEB_THREADS"):
        db_pool.check_web_pool(app, 50)


def test_the_procfile_worker_threads_follow_the_setting():
    from tests.support.stack import procfile

    assert "--threads ${WORKER_THREADS:-8}" in procfile()["worker"]
    assert Config.WORKER_THREADS == 8 or "WORKER_THREADS" in __import__("os").environ


def test_the_spare_connection_is_taken_once():
    with db_pool.spare() as first, db_pool.spare() as second:
        assert (first, second) == (True, False)
    with db_pool.spare() as again:
        assert again

"""The gevent serving model refuses to start when something would block its loop.

What gevent patches is per process and cannot be undone, so the cases that need a patched (or
wrongly ordered) standard library run in a fresh interpreter; the rest run here, unpatched.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import types

import pytest

from config import TestConfig
from portal import cooperative, serving
from tests.support.services import REPO_ROOT

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/nothing"


def _fresh(code: str) -> str:
    """Run ``code`` in a new interpreter from the repository; its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_patched_before_psycopg_is_cooperative():
    out = _fresh(f"""
        from gevent import monkey
        monkey.patch_all()
        import psycopg
        from portal import cooperative
        print(cooperative.problems({PG!r}))
    """)
    assert out.strip() == "[]"


def test_psycopg_imported_before_the_patch_is_refused():
    out = _fresh(f"""
        import psycopg
        from gevent import monkey
        monkey.patch_all()
        from portal import cooperative
        for problem in cooperative.problems({PG!r}):
            print(problem)
    """)
    assert "psycopg was imported before gevent patched" in out
    assert "unpatched selectors.DefaultSelector" in out


def test_sqlite_under_gevent_is_refused():
    out = _fresh("""
        from gevent import monkey
        monkey.patch_all()
        from portal import cooperative
        try:
            cooperative.refuse_if_blocking("sqlite:////tmp/x.db")
        except cooperative.BlockingDriver as exc:
            print(exc)
    """)
    assert out.startswith("Refusing to serve in gevent mode")
    assert "SQLite cannot serve under gevent" in out


def test_gevent_app_on_sqlite_refuses_to_start_and_on_postgres_starts():
    """``create_app`` itself refuses: the check is not something a caller can forget."""
    out = _fresh(f"""
        from gevent import monkey
        monkey.patch_all()
        from config import TestConfig
        from portal import create_app
        from portal.cooperative import BlockingDriver
        try:
            create_app(TestConfig, SQLALCHEMY_DATABASE_URI="sqlite://")
        except BlockingDriver as exc:
            print("refused:", exc)
        app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI={PG!r})
        print("mode:", app.config["SOCKETIO_ASYNC_MODE"])
    """)
    assert "refused: Refusing to serve in gevent mode" in out
    assert "mode: gevent" in out  # "auto" follows the patched standard library


def test_unpatched_process_has_every_patch_missing():
    found = cooperative.problems(PG)
    assert len(found) == 1 and "not patched by gevent" in found[0]
    for module in cooperative.REQUIRED_PATCHES:
        assert module in found[0]


def test_gevent_mode_without_the_patch_refuses_to_start(tmp_path):
    from portal import create_app

    with pytest.raises(cooperative.BlockingDriver, match="not patched by gevent"):
        create_app(
            TestConfig,
            INSTANCE_DIR=str(tmp_path),
            SOCKETIO_ASYNC_MODE="gevent",
            SQLALCHEMY_DATABASE_URI=PG,
        )


def test_sqlalchemy_default_postgres_driver_is_refused():
    assert "psycopg2" in cooperative.driver_problems("postgresql://u@h/db")[0]


@pytest.mark.parametrize(
    ("callback", "refused"), [(None, True), (lambda conn, timeout=None: None, False)]
)
def test_psycopg2_needs_a_wait_callback(monkeypatch, callback, refused):
    extensions = types.SimpleNamespace(get_wait_callback=lambda: callback)
    monkeypatch.setitem(sys.modules, "psycopg2", types.ModuleType("psycopg2"))
    monkeypatch.setitem(sys.modules, "psycopg2.extensions", extensions)
    found = cooperative.driver_problems("postgresql+psycopg2://u@h/db")
    assert bool(found) is refused
    if refused:
        assert "without a wait callback" in found[0]


def test_unknown_drivers_are_refused():
    assert cooperative.driver_problems("mysql+pymysql://u@h/db")
    assert cooperative.driver_problems("postgresql+asyncpg://u@h/db")


def test_async_mode_auto_is_threading_when_unpatched_and_names_are_checked():
    assert serving.async_mode("auto") == "threading"
    assert serving.async_mode(None) == "threading"
    assert serving.async_mode("gevent") == "gevent"
    assert serving.async_mode(" Threading ") == "threading"
    with pytest.raises(RuntimeError, match="SOCKETIO_ASYNC_MODE"):
        serving.async_mode("eventlet")


def test_a_gevent_worker_serving_threading_mode_fails_its_boot(app):
    """--preload (the app loaded before the patch) would leave "auto" at threading."""
    from gunicorn.workers.ggevent import GeventWorker
    from gunicorn.workers.gthread import ThreadWorker

    assert app.config["SOCKETIO_ASYNC_MODE"] == "threading"
    serving.check_worker(ThreadWorker.__new__(ThreadWorker))  # not gevent: nothing to check
    with pytest.raises(cooperative.BlockingDriver, match="--preload"):
        serving.check_worker(GeventWorker.__new__(GeventWorker))

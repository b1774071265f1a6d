"""pytest plugin: when ``CI`` is true, a skipped integration or browser test fails the run.

Locally, an integration test may skip because PostgreSQL or Chromium is missing; in CI that
would hide a broken pipeline, so the skip is turned into a failure that shows the skip reason.

A test is guarded when it carries the ``integration`` or ``browser`` marker or lives under
``tests/integration/`` or ``tests/browser/``. An expected failure (xfail) is left alone.

Registered three ways, any of which is enough (registering twice is harmless): the root
``tests/conftest.py`` (``pytest_plugins``), ``tests/support/run_tests.py`` (``-p
tests.support.ci``), and the conftest of a guarded folder (``pytest_configure`` calls
:func:`register`), so it also holds when that folder is run on its own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

GUARDED_MARKERS = ("integration", "browser")
GUARDED_DIRS = ("integration", "browser")
_KEY = pytest.StashKey[list]()
_MODULE_SKIPPED = pytest.StashKey[bool]()


def ci_enabled() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def register(config: pytest.Config) -> None:
    """Make sure this plugin is active (call from a conftest's ``pytest_configure``)."""
    if not config.pluginmanager.has_plugin(__name__):
        config.pluginmanager.register(sys.modules[__name__], name=__name__)


def _in_guarded_dir(path) -> bool:
    parts = getattr(path, "parts", ())
    return any(parts[i] == "tests" and parts[i + 1] in GUARDED_DIRS for i in range(len(parts) - 1))


def is_guarded(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(m) for m in GUARDED_MARKERS) or _in_guarded_dir(item.path)


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _turn_into_failure(config: pytest.Config, report, nodeid: str) -> None:
    reason = _skip_reason(report)
    report.outcome = "failed"
    report.longrepr = (
        f"CI=true: {nodeid} was skipped, and CI does not allow skipped integration or "
        f"browser tests (they would hide a missing service).\nSkip reason: {reason}"
    )
    config.stash.setdefault(_KEY, []).append((nodeid, reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    if report.skipped and not hasattr(report, "wasxfail") and ci_enabled() and is_guarded(item):
        _turn_into_failure(item.config, report, item.nodeid)
    return report


_CONFIG: list[pytest.Config] = []


def pytest_configure(config: pytest.Config) -> None:
    # Collect reports carry no config; under pytest-xdist they reach the controller's
    # ``pytest_collectreport`` only (workers collect, the controller decides the exit status).
    _CONFIG[:] = [config]


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # A module that skips itself at import (``pytest.importorskip``, ``allow_module_level``).
    # Failing the collect report would interrupt the whole session, so the skip is only noted
    # here, and the exit status is set at the end (the other tests still run).
    if not (report.skipped and ci_enabled() and _CONFIG):
        return
    if _in_guarded_dir(Path(report.nodeid.split("::")[0])):
        config = _CONFIG[0]
        config.stash.setdefault(_KEY, []).append((report.nodeid, _skip_reason(report)))
        config.stash[_MODULE_SKIPPED] = True


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus):
    if session.config.stash.get(_MODULE_SKIPPED, False) and exitstatus in (
        pytest.ExitCode.OK,
        pytest.ExitCode.NO_TESTS_COLLECTED,
    ):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config):
    turned = config.stash.get(_KEY, [])
    if turned:
        terminalreporter.section("skips counted as failures (CI=true)", red=True)
        for nodeid, reason in turned:
            terminalreporter.line(f"{nodeid}: {reason}")

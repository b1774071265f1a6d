"""The CI plugin (``tests/support/ci.py``) fails a run whose integration or browser test skipped,
in one process and split over pytest-xdist workers (as ``make test`` runs the suite)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

MODULES = {
    # A module that skips itself at import: collected by a worker, decided by the controller.
    "module_skip": "import pytest\npytest.importorskip('no_such_module_for_ci_plugin')\n",
    "test_skip": "import pytest\n\ndef test_needs_a_service():\n    pytest.skip('no service')\n",
    "passing": "def test_fine():\n    assert True\n",
}


def _run(tmp_path: Path, body: str, workers: int, ci: str = "true") -> subprocess.CompletedProcess:
    folder = tmp_path / "tests" / "integration"
    folder.mkdir(parents=True)
    (folder / "test_guarded.py").write_text(body)
    (tmp_path / "tests" / "unit").mkdir()
    (tmp_path / "tests" / "unit" / "test_plain.py").write_text(MODULES["passing"])
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "pytest", "-p", "tests.support.ci", "-q"]
    command += ["-p", "no:cacheprovider"]
    command += ["-n", str(workers)] if workers else ["-p", "no:xdist"]
    return subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("kind", ["module_skip", "test_skip"])
def test_a_skipped_guarded_test_fails_the_run(tmp_path, kind, workers):
    result = _run(tmp_path, MODULES[kind], workers)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "CI" in result.stdout and "skip" in result.stdout.lower()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_run_without_skips_passes(tmp_path, workers):
    result = _run(tmp_path, MODULES["passing"], workers)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("workers", [0, 2])
def test_outside_ci_a_skip_is_only_a_skip(tmp_path, workers):
    result = _run(tmp_path, MODULES["module_skip"], workers, ci="false")
    assert result.returncode == 0, result.stdout + result.stderr


HEAVY = """import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.pg_heavy


@pytest.fixture(scope="module")
def stack():
    # Stands for a module's processes on PostgreSQL: started before its tests, stopped after.
    Path("spans").mkdir(exist_ok=True)
    start = time.monotonic()
    yield
    time.sleep(0.3)
    Path("spans", __name__).write_text(f"{start} {time.monotonic()}")


@pytest.mark.parametrize("n", range(3))
def test_uses_the_stack(stack, n):
    time.sleep(0.2)
"""


def test_heavy_postgres_modules_take_turns_across_xdist_processes(tmp_path):
    """Modules marked ``pg_heavy`` never overlap, from their first module fixture to their last
    teardown, though each xdist process takes one (``tests/support/fixtures.py``)."""
    folder = tmp_path / "tests"
    folder.mkdir()
    for name in ("test_heavy_a", "test_heavy_b", "test_heavy_c"):
        (folder / f"{name}.py").write_text(HEAVY)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "PORTAL_TESTS_HEAVY_LOCK": str(tmp_path / "heavy.lock"),
    }
    command = [sys.executable, "-m", "pytest", "-p", "tests.support.fixtures", "-q"]
    command += ["-p", "no:cacheprovider", "-n", "3", "--dist", "loadfile", "tests"]
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    spans = sorted(
        tuple(map(float, path.read_text().split())) for path in (tmp_path / "spans").iterdir()
    )
    assert len(spans) == 3
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, spans

"""The CI plugin (``tests/support/ci.py``) fails a run whose integration or browser test skipped,
in one process and split over pytest-xdist workers (as ``make test`` runs the suite)."""

from __future__ import annotations

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

"""Run a benchmark script as a command, as a person would, and read its last JSON line."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.services import REPO_ROOT


def run(script: str, *args: str, timeout: float = 600) -> tuple[int, dict]:
    """``python bench/<script> <args>``: its exit status and the figures of its JSON line (an
    AssertionError with the output's tail when there is none)."""
    done = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON line\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.returncode, json.loads(lines[-1])

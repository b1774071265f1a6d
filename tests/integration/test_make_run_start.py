"""What someone trying the portal sees when `make run` starts and stops it.

The commands of `make run` (db upgrade, seed-demo, serve) run in the embedded mode on a fresh
instance folder, with a private temporary folder so anything left behind shows. The start
must read as a success: one "ready" banner, no warning meant for another audience, no
"Message … was skipped" lines; Ctrl-C must end in "stopped" with nothing left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
MISLEADING = (
    "was skipped",
    "development server",
    "production deployment",
    "Debug mode",
    "Traceback",
)


def _env(instance: Path, tmp: Path) -> dict[str, str]:
    # Only what the embedded mode needs: no DATABASE_URL, REDIS_URL or chain settings leak in.
    keep = ("PATH", "HOME", "LANG", "LC_ALL")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(PORTAL_INSTANCE_DIR=str(instance), TMPDIR=str(tmp), PYTHONUNBUFFERED="1")
    return env


def _flask(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )


def _read_until(process: subprocess.Popen, marker: str, seconds: float) -> str:
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not printed; output so far:\n{''.join(seen)}")


def test_start_reads_as_ready_and_stop_leaves_nothing(tmp_path):
    instance, tmp = tmp_path / "instance", tmp_path / "tmp"
    tmp.mkdir()
    env = _env(instance, tmp)
    _flask("db", "upgrade", env=env)
    seeded = _flask("seed-demo", env=env)
    assert "admin@example.org" in seeded.stdout
    assert list(tmp.iterdir()) == [], "a one-shot command left a temporary folder"

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        start = _read_until(process, "Ctrl-C stops", 120)
        assert f"Portal ready: http://127.0.0.1:{port}/" in start
        assert "admin@example.org" in start and "reset-password" in start
        # The worker threads pick up the seed's leftover messages within a moment.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as page:
            assert page.status == 200
        time.sleep(3)
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = start + rest
    for words in MISLEADING:
        assert words not in output, f"{words!r} printed:\n{output}"
    assert output.rstrip().endswith("stopped")
    assert list(tmp.iterdir()) == [], "the portal left a temporary folder behind"

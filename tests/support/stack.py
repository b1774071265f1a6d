"""The portal as separate processes: CLI calls, the web server, the Dramatiq worker, signing in.

Used by the integration tests, the browser tests and ``bench/realtime.py``: each process gets
the same environment (database, Redis, secrets, an instance folder of its own), is started in
its own process group and is stopped by PID.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.services import REPO_ROOT, ManagedProcess, free_port, wait_for

PYTHON = sys.executable

# Variables of the caller's shell that would change what the portal processes do.
_SCRUB = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "PII_KEY",
    "BROKER",
    "PORTAL_ENV",
    "PORTAL_INSTANCE_DIR",
    "FLASK_APP",
    "FLASK_DEBUG",
    "RATELIMIT_STORAGE_URI",
)


def portal_env(
    *,
    database_url: str,
    redis_url: str,
    instance_dir: str | Path,
    secrets: dict[str, str],
    **extra: str,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(
        PORTAL_ENV="embedded",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        BROKER="redis",
        SECRET_KEY=secrets["SECRET_KEY"],
        PII_KEY=secrets["PII_KEY"],
        PORTAL_INSTANCE_DIR=str(instance_dir),
        # The Dramatiq CLI has no flag for it; 100 ms keeps the pick-up after idle fast.
        dramatiq_worker_timeout="100",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p),
    )
    env.update(extra)
    Path(instance_dir).mkdir(parents=True, exist_ok=True)
    return env


class CommandFailed(RuntimeError):
    pass


def flask_cli(env: dict, *args: str, stdin: str | None = None, timeout: float = 180):
    """Run ``flask --app wsgi <args>``; raise CommandFailed with its output if it fails."""
    argv = [PYTHON, "-m", "flask", "--app", "wsgi", *args]
    result = subprocess.run(
        argv,
        env=env,
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise CommandFailed(
            f"{' '.join(argv[2:])} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
        )
    return result


def migrate(env: dict) -> None:
    flask_cli(env, "db", "upgrade")


def create_user(env: dict, email: str, password: str, role: str = "admin") -> int:
    out = flask_cli(
        env,
        "create-user",
        "--email",
        email,
        "--role",
        role,
        "--password-stdin",
        stdin=password + "\n",
    ).stdout
    found = re.search(r"created user (\d+)", out)
    if not found:
        raise CommandFailed(f"create-user said: {out!r}")
    return int(found.group(1))


# --------------------------------------------------------------------------- processes


class WebServer(ManagedProcess):
    """``flask --app wsgi serve --no-workers`` on a free port."""

    def __init__(
        self, env: dict, log_dir: str | Path, port: int | None = None, workers: bool = False
    ):
        self.port = port or free_port()
        argv = [
            PYTHON,
            "-m",
            "flask",
            "--app",
            "wsgi",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        if not workers:
            argv.append("--no-workers")
        super().__init__("web", argv, env=env, log_path=Path(log_dir) / f"web-{self.port}.log")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> WebServer:
        import requests

        def ready():
            if not self.running():
                raise RuntimeError(f"the web server exited:\n{self.log_tail()}")
            try:
                # The Engine.IO handshake needs no template and no sign-in.
                r = requests.get(f"{self.base_url}/socket.io/?EIO=4&transport=polling", timeout=2)
            except requests.RequestException:
                return False
            return r.status_code == 200

        try:
            wait_for(ready, timeout, interval=0.1, what=f"the web server on {self.base_url}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.log_tail()}") from None
        return self


class Worker(ManagedProcess):
    """``dramatiq workers.main --processes N --threads M`` (the production worker entry)."""

    def __init__(self, env: dict, log_dir: str | Path, processes: int = 1, threads: int = 2):
        argv = [
            PYTHON,
            "-m",
            "dramatiq",
            "workers.main",
            "--processes",
            str(processes),
            "--threads",
            str(threads),
        ]
        super().__init__("worker", argv, env=env, log_path=Path(log_dir) / "worker.log")
        self.processes = processes

    def wait_ready(self, timeout: float = 60) -> Worker:
        def ready():
            if not self.running():
                raise RuntimeError(f"the worker exited:\n{self.log_tail()}")
            try:
                text = self.log_path.read_text(errors="replace")
            except OSError:
                return False
            return text.count("Worker process is ready for action") >= self.processes

        try:
            wait_for(ready, timeout, interval=0.1, what="the Dramatiq worker")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.log_tail()}") from None
        return self


# --------------------------------------------------------------------------- signing in

_INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE | re.DOTALL)
_META = re.compile(r"<meta\b[^>]*>", re.IGNORECASE | re.DOTALL)
_ATTR = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")


def _attrs(tag: str) -> dict[str, str]:
    return {
        m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
        for m in _ATTR.finditer(tag)
    }


def scrape_csrf(page: str) -> str | None:
    """The CSRF token of a page: a ``csrf_token`` hidden input, else a ``csrf-token`` meta tag."""
    for tag in _INPUT.findall(page):
        attrs = _attrs(tag)
        if attrs.get("name") == "csrf_token" and attrs.get("value"):
            return attrs["value"]
    for tag in _META.findall(page):
        attrs = _attrs(tag)
        if attrs.get("name") in ("csrf-token", "csrf_token") and attrs.get("content"):
            return attrs["content"]
    return None


class SignInFailed(AssertionError):
    pass


def sign_in(base_url: str, email: str, password: str):
    """A ``requests.Session`` signed in through the login form, like a browser."""
    import requests

    http = requests.Session()
    page = http.get(f"{base_url}/login", timeout=10)
    token = scrape_csrf(page.text)
    if page.status_code != 200 or token is None:
        raise SignInFailed(
            f"GET /login gave {page.status_code} and "
            f"{'no csrf_token input' if token is None else 'a token'}: {page.text[:500]!r}"
        )
    reply = http.post(
        f"{base_url}/login",
        data={"email": email, "password": password, "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    if reply.status_code not in (302, 303):
        raise SignInFailed(f"POST /login gave {reply.status_code}: {reply.text[:500]!r}")
    return http


def fresh_csrf(http, base_url: str, paths=("/jobs", "/", "/account")) -> str:
    """A CSRF token for the signed-in session (signing in starts a new session and token)."""
    seen = []
    for path in paths:
        page = http.get(f"{base_url}{path}", timeout=10)
        token = scrape_csrf(page.text) if page.status_code == 200 else None
        if token:
            return token
        seen.append(f"{path}: {page.status_code}")
    raise SignInFailed("no page offered a CSRF token after sign-in (" + ", ".join(seen) + ")")

"""The portal as separate processes: CLI calls, the web server, the Dramatiq worker, signing in.

Used by the integration tests, the browser tests and ``bench/realtime.py``: each process gets
the same environment (database, Redis, secrets, an instance folder of its own), is started in
its own process group and is stopped by PID.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from secrets import token_hex

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
    "WEB3_PROVIDER_URI",
    "CHAIN_OPERATOR_KEY",
    "CHAIN_FAUCET_KEY",
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
        # Every browser test signs in from 127.0.0.1, and the per-address limit on sign-ins is
        # counted across the run's portals (one Redis): the limit itself has its own tests.
        LOGIN_IP_LIMIT="1000 per minute",
        LOGIN_RATE_LIMIT="1000 per minute",
        # The Dramatiq CLI has no flag for it; 100 ms keeps the pick-up after idle fast.
        dramatiq_worker_timeout="100",
        PYTHONUNBUFFERED="1",
        # A second connection taken by a thread holding one fails loudly (portal/db_guard.py).
        DB_CONNECTION_GUARD="raise",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p),
        # Procfile commands name gunicorn, dramatiq and flask: take this interpreter's.
        PATH=os.pathsep.join(p for p in (str(Path(PYTHON).parent), env.get("PATH")) if p),
        # One treasury for every process of the stack and the in-process app that seeds it: the
        # contracts give their admin and minter roles to the treasury of the process that asks
        # for the deployment, and each mint is signed by the process that runs the job.
        CHAIN_TREASURY_KEY="0x" + token_hex(32),
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


def enrol_two_factor(env: dict, email: str) -> str:
    """Set up two-factor sign-in for a user of the stack's database, in code (as the set-up page
    would); the sign-in helpers then type the codes their app would show. Returns the secret."""
    from tests.support import twofactor

    argv = [PYTHON, "-m", "tests.support.enrol_two_factor", email]
    result = subprocess.run(
        argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180
    )
    if result.returncode != 0:
        raise CommandFailed(f"enrolling {email} failed:\n{result.stderr[-3000:]}")
    secret, step = result.stdout.split()[-2:]
    twofactor.register(email, secret, int(step))
    return secret


# --------------------------------------------------------------------------- processes


def wait_web_ready(proc: ManagedProcess, base_url: str, timeout: float = 60) -> None:
    """Until the Engine.IO handshake answers (it needs no template and no sign-in)."""
    import requests

    def ready():
        if not proc.running():
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        try:
            reply = requests.get(f"{base_url}/socket.io/?EIO=4&transport=polling", timeout=2)
        except requests.RequestException:
            return False
        return reply.status_code == 200

    try:
        wait_for(ready, timeout, interval=0.1, what=f"{proc.name} on {base_url}")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{proc.log_tail()}") from None


def wait_worker_ready(proc: ManagedProcess, processes: int, timeout: float = 60) -> None:
    """Until each Dramatiq worker process has logged that it is ready."""

    def ready():
        if not proc.running():
            raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
        try:
            text = proc.log_path.read_text(errors="replace")
        except OSError:
            return False
        return text.count("Worker process is ready for action") >= processes

    try:
        wait_for(ready, timeout, interval=0.1, what=f"{proc.name} ({processes} processes)")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}\n{proc.log_tail()}") from None


class WebServer(ManagedProcess):
    """``flask --app wsgi serve --no-workers`` on a free port."""

    def __init__(
        self, env: dict, log_dir: str | Path, port: int | None = None, workers: bool = False
    ):
        self.port = port or free_port()
        argv = [PYTHON, "-m", "flask", "--app", "wsgi", "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port)] + ([] if workers else ["--no-workers"])
        super().__init__("web", argv, env=env, log_path=Path(log_dir) / f"web-{self.port}.log")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> WebServer:
        wait_web_ready(self, self.base_url, timeout)
        return self


class Worker(ManagedProcess):
    """``dramatiq workers.main --processes N --threads M`` (the production worker entry)."""

    def __init__(self, env: dict, log_dir: str | Path, processes: int = 1, threads: int = 2):
        argv = [PYTHON, "-m", "dramatiq", "workers.main"]
        argv += ["--processes", str(processes), "--threads", str(threads)]
        super().__init__("worker", argv, env=env, log_path=Path(log_dir) / "worker.log")
        self.processes = processes

    def wait_ready(self, timeout: float = 60) -> Worker:
        wait_worker_ready(self, self.processes, timeout)
        return self


class ProcfileProcess(ManagedProcess):
    """A process type of the ``Procfile``, run as a Procfile runner would: ``sh -c``, $PORT set."""

    def __init__(self, kind: str, env: dict, log_dir: str | Path, port: int | None = None):
        self.kind = kind
        self.port = port or free_port()
        self.command = procfile()[kind]
        super().__init__(
            f"Procfile {kind}",
            ["/bin/sh", "-c", self.command],  # as honcho/foreman/Heroku run it
            env={**env, "PORT": str(self.port)},
            log_path=Path(log_dir) / f"procfile-{kind}.log",
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> ProcfileProcess:
        if self.kind == "web":
            wait_web_ready(self, self.base_url, timeout)
        else:
            found = re.search(r"--processes\s+(\d+)", self.command)
            wait_worker_ready(self, int(found.group(1)) if found else 1, timeout)
        return self


def kill9(process: ManagedProcess, timeout: float = 5) -> None:
    """kill -9 every process of a command's group (a Dramatiq parent and its children), at once
    and without warning, and wait until the group is gone."""
    os.killpg(process.pid, signal.SIGKILL)
    process.proc.wait(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def procfile(path: Path = REPO_ROOT / "Procfile") -> dict[str, str]:
    """Process types of the Procfile: ``{"web": "gunicorn ...", ...}``."""
    kinds = {}
    for line in path.read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_-]+):\s*(.+)$", line)
        if found:
            kinds[found.group(1)] = found.group(2).strip()
    return kinds


def run_procfile_release(env: dict, timeout: float = 180) -> None:
    """The Procfile's ``release`` command (migrations), as a platform runs it before a deploy."""
    result = subprocess.run(
        ["/bin/sh", "-c", procfile()["release"]],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise CommandFailed(f"release exited {result.returncode}:\n{result.stderr[-3000:]}")


def released_env(*, database_url: str, redis_url: str, secrets: dict, folder: Path, **settings):
    """The environment of a portal on a fresh database, migrated by the Procfile's ``release``
    command as a platform would, ready for its processes."""
    env = portal_env(
        database_url=database_url,
        redis_url=redis_url,
        instance_dir=folder / "instance",
        secrets=secrets,
        **settings,
    )
    run_procfile_release(env)
    return env


@contextlib.contextmanager
def running(process):
    """``process`` started and answering (its ``wait_ready``) for the block; stopped by PID
    after it, whatever happened."""
    try:
        process.start()
        process.wait_ready()
        yield process
    finally:
        process.stop()


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
    if reply.headers.get("Location", "").endswith("/login/two-factor"):
        _type_code(http, base_url, email)
    return http


def _type_code(http, base_url: str, email: str) -> None:
    """The code step of an enrolled user: the code their app would show now."""
    from tests.support import twofactor

    secret = twofactor.secret_for(email)
    if secret is None:
        raise SignInFailed(f"{email} is asked for a code but was not enrolled by this test run")
    page = http.get(f"{base_url}/login/two-factor", timeout=10)
    reply = http.post(
        f"{base_url}/login/two-factor",
        data={"code": twofactor.code(secret), "csrf_token": scrape_csrf(page.text)},
        allow_redirects=False,
        timeout=30,
    )
    if reply.status_code not in (302, 303):
        raise SignInFailed(f"POST /login/two-factor gave {reply.status_code}")


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


def post_form(http, base_url: str, path: str, data: dict):
    """POST a form of the signed-in session with a token from the form's own page (or "/"),
    as a browser would; the reply, which must be a redirect (the form was accepted)."""
    token = fresh_csrf(http, base_url, paths=(path.rsplit("/", 1)[0], "/"))
    reply = http.post(
        f"{base_url}{path}", data={**data, "csrf_token": token}, allow_redirects=False, timeout=30
    )
    assert reply.status_code in (302, 303), (path, reply.status_code, reply.text[:800])
    return reply


def approve_newest(base_url: str, email: str, password: str, engine, kind: str) -> int:
    """A second person signs in and approves the newest pending request of ``kind`` through
    the decide form (funding and disbursement starts wait for someone besides the asker)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        rid = conn.execute(
            sa.text("select max(id) from approval_requests where status = 'pending' and kind = :k"),
            {"k": kind},
        ).scalar()
    assert rid is not None, f"no {kind} request is waiting for approval"
    http = sign_in(base_url, email, password)
    post_form(
        http,
        base_url,
        f"/approvals/{rid}/decide",
        {f"r{rid}-decision": "approve", f"r{rid}-reason": ""},
    )
    return rid


def wait_sql(engine, sql: str, params: dict, until, timeout: float, what: str, logs=lambda: ""):
    """Poll one SQL value until ``until(value)``; that value. The failure shows the last value
    and ``logs()`` (the processes' log tails), so a hung stack says where it stopped."""
    import sqlalchemy as sa

    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            value = conn.execute(sa.text(sql), params).scalar()
        if until(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {value!r}){logs()}")


@contextlib.contextmanager
def served_portal(
    *, database_url: str, redis_url: str, secrets: dict, folder: Path, name: str, **env_extra: str
):
    """``flask serve`` with its worker threads (and so the embedded chain), a staff admin, and an
    in-process worker-role app on the same database and Socket.IO channel, for a test to prepare
    data through the services and to emit as a separate worker would.

    Yields ``{"base", "email", "password", "app"}``; stops the server and closes the app after.
    """
    from config import Config
    from portal import create_app
    from portal.extensions import db

    channel = f"portal-{name}-{token_hex(4)}"
    env = portal_env(
        database_url=database_url,
        redis_url=redis_url,
        instance_dir=folder / "instance",
        secrets=secrets,
        SOCKETIO_CHANNEL=channel,
        **env_extra,
    )
    email, password = f"{name}-{token_hex(4)}@example.org", f"a-long-{name}-password-{token_hex(2)}"
    create_user(env, email, password, role="admin")
    enrol_two_factor(env, email)  # the policy is on: the admin signs in with a code
    web = WebServer(env, folder, workers=True)
    app = create_app(
        Config,
        role="worker",
        SQLALCHEMY_DATABASE_URI=database_url,
        REDIS_URL=redis_url,
        BROKER="redis",
        SECRET_KEY=secrets["SECRET_KEY"],
        PII_KEY=secrets["PII_KEY"],
        INSTANCE_DIR=str(folder / "test-process"),
        RATELIMIT_STORAGE_URI="memory://",
        SOCKETIO_CHANNEL=channel,
        CHAIN_TREASURY_KEY=env["CHAIN_TREASURY_KEY"],
    )
    try:
        web.start()
        web.wait_ready()
        yield {"base": web.base_url, "email": email, "password": password, "app": app}
    finally:
        web.stop()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        app.extensions["dramatiq_broker"].close()

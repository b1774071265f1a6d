"""One snapshot per change, shared by every screen, subscriber and process.

Per project the store keeps (in Redis, or in memory for a single process without Redis):

- ``changes``: a counter each process bumps once per round of commits it saw for the project;
- ``published``: the highest change number a snapshot was built after and sent to the room;
- ``snap``: the latest snapshot as JSON, which page loads and subscribes answer with;
- ``claim``: who may build next, held ``MIN_GAP`` seconds and never released early, so
  however many processes see commits, a project is built at most once per ``MIN_GAP``.

A publisher whose change number is not yet ``published`` builds when it gets the claim;
otherwise it waits for whoever holds it and checks again. A build reads ``changes`` first, so
the snapshot includes every commit whose number it covers (each number is taken after its
commit). Readers never build while a fresh snapshot is stored; a cold or expired one is built
by one reader while the others wait a moment for it.

A Redis that cannot be reached costs the screen its sharing, never its figures: every path
falls back to building the snapshot directly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable

from flask import Flask
from sqlalchemy.engine import Connection

from portal.dashboard import snapshot

log = logging.getLogger(__name__)

MIN_GAP = 0.2  # seconds between two builds of one project, over every process
SNAPSHOT_TTL = 30.0  # seconds a stored snapshot answers page loads without any change
READ_WAIT = 1.0  # seconds a reader waits for another reader's build of a cold snapshot
READ_POLL = 0.05
# How long a stored snapshot may lag the database's count of changes before a page load builds
# a fresh one: a lost refresh notice leaves a page load at most this stale, not SNAPSHOT_TTL.
CHANGE_GRACE = 1.0

_PUT = """
local built = tonumber(redis.call('GET', KEYS[2]) or '0')
local stored = 0
if tonumber(ARGV[2]) >= built then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  stored = 1
end
local version = tonumber(ARGV[4])
if version >= 0 and version > tonumber(redis.call('GET', KEYS[3]) or '-1') then
  redis.call('SET', KEYS[3], ARGV[4])
end
return stored
"""


class RedisStore:
    def __init__(self, client, prefix: str, ttl: float):
        self.client = client
        self.prefix = prefix
        self.ttl_ms = int(ttl * 1000)
        self._put = client.register_script(_PUT)

    def _key(self, project_id: int, name: str) -> str:
        return f"{self.prefix}:{project_id}:{name}"

    def note_change(self, project_id: int) -> int:
        return int(self.client.incr(self._key(project_id, "changes")))

    def changes(self, project_id: int) -> int:
        return int(self.client.get(self._key(project_id, "changes")) or 0)

    def published(self, project_id: int) -> int:
        return int(self.client.get(self._key(project_id, "published")) or 0)

    def snapshot(self, project_id: int) -> str | None:
        found = self.client.get(self._key(project_id, "snap"))
        return found.decode() if isinstance(found, bytes) else found

    def claim(self, project_id: int, name: str = "claim", seconds: float = MIN_GAP) -> bool:
        key = self._key(project_id, name)
        return bool(self.client.set(key, "1", nx=True, px=max(1, int(seconds * 1000))))

    def put(self, project_id: int, data: str, built: float, version: int = -1) -> bool:
        keys = [self._key(project_id, n) for n in ("snap", "built", "published")]
        return bool(self._put(keys=keys, args=[data, repr(built), self.ttl_ms, version]))


class MemoryStore:
    """The same, for one process without Redis (unit tests): nothing to share it with."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._lock = threading.Lock()
        self._changes: dict[int, int] = {}
        self._published: dict[int, int] = {}
        self._snaps: dict[int, tuple[str, float, float]] = {}  # data, built, expires
        self._claims: dict[tuple[int, str], float] = {}

    def note_change(self, project_id: int) -> int:
        with self._lock:
            self._changes[project_id] = self._changes.get(project_id, 0) + 1
            return self._changes[project_id]

    def changes(self, project_id: int) -> int:
        return self._changes.get(project_id, 0)

    def published(self, project_id: int) -> int:
        return self._published.get(project_id, 0)

    def snapshot(self, project_id: int) -> str | None:
        found = self._snaps.get(project_id)
        return found[0] if found and found[2] > time.monotonic() else None

    def claim(self, project_id: int, name: str = "claim", seconds: float = MIN_GAP) -> bool:
        with self._lock:
            now = time.monotonic()
            if self._claims.get((project_id, name), 0) > now:
                return False
            self._claims[(project_id, name)] = now + seconds
            return True

    def put(self, project_id: int, data: str, built: float, version: int = -1) -> bool:
        with self._lock:
            old = self._snaps.get(project_id)
            stored = old is None or old[2] <= time.monotonic() or built >= old[1]
            if stored:
                self._snaps[project_id] = (data, built, time.monotonic() + self.ttl)
            if version > self._published.get(project_id, -1):
                self._published[project_id] = version
            return stored


_create_lock = threading.Lock()


def _prefix(app: Flask, engine) -> str:
    """Keys are per database: two deployments (or test runs) sharing a Redis never mix."""
    named = app.config.get("DASHBOARD_CACHE_KEY")
    if not named:
        url = engine.url.render_as_string(hide_password=True)
        named = hashlib.sha256(url.encode()).hexdigest()[:16]
    return f"portal:dashboard:{named}"


def store_for(app: Flask, engine) -> RedisStore | MemoryStore:
    found = app.extensions.get("dashboard_store")
    if found is not None:
        return found
    with _create_lock:
        found = app.extensions.get("dashboard_store")
        if found is None:
            ttl = float(app.config.get("DASHBOARD_SNAPSHOT_TTL", SNAPSHOT_TTL))
            url = app.config.get("REDIS_URL")
            if url and app.config.get("BROKER") == "redis":
                import redis

                client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
                found = RedisStore(client, _prefix(app, engine), ttl)
            else:
                found = MemoryStore(ttl)
            app.extensions["dashboard_store"] = found
    return found


def encode(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"))


def publish(store, project_id: int, version: int, data: dict) -> None:
    """Store a snapshot built after change ``version`` as the one sent to the room."""
    store.put(project_id, encode(data), data["version"], version)


def _fresh(stored: str, now: int | None, newer_than: float = 0.0) -> dict | None:
    """The stored snapshot, unless the database counted changes it does not include and it
    was built more than ``CHANGE_GRACE`` ago (or before ``newer_than``)."""
    data = json.loads(stored)
    if now is None or data.get("changes") == now:
        return data
    built = float(data.get("version") or 0)
    if built >= newer_than and time.time() - built < CHANGE_GRACE:
        # Changes go on (vendors charging): their notices are on the way and the room will
        # hear the next snapshot; a page load serves this one rather than build its own.
        return data
    return None


def current(store, connect: Callable[[], Connection], project_id: int) -> dict:
    """The project's snapshot for a page load or a subscribe: the stored one while it lasts
    and while it counts as many changes as the database."""
    now = None
    try:
        stored = store.snapshot(project_id)
        if stored is not None:
            # The count of changes the database holds now, one small read: a snapshot whose
            # count differs missed a change whose notice was lost (a process died between its
            # commit and the publish), and is built again rather than served until it expires.
            now = snapshot.changes(connect(), project_id)
            found = _fresh(stored, now)
            if found is not None:
                return found
        if not store.claim(project_id, "reading", READ_WAIT):
            # Another reader is building it: a crowd of screens arriving at once costs one.
            waiting = time.time()
            deadline = time.monotonic() + READ_WAIT
            while time.monotonic() < deadline:
                time.sleep(READ_POLL)
                stored = store.snapshot(project_id)
                found = None if stored is None else _fresh(stored, now, waiting)
                if found is not None:
                    return found
    except Exception:  # Redis away: the figures still come, unshared
        log.warning("the dashboard store could not be read", exc_info=True)
        return snapshot.build(connect(), project_id)
    data = snapshot.build(connect(), project_id)
    try:
        store.put(project_id, encode(data), data["version"])
    except Exception:
        log.warning("the dashboard store could not be written", exc_info=True)
    return data

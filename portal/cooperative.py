"""Is this process fit to serve on gevent's loop? The checks behind refusing to start.

Under gunicorn's gevent worker every request and every Socket.IO connection is a greenlet on one
thread. A call that blocks in C without going through gevent's hub (a database driver waiting on
its socket with its own poll(), SQLite's busy wait, a lock that is not gevent's) freezes them
all: two thousand sockets and every page wait for one query. So the web role refuses to start in
gevent mode unless the standard library was patched before anything that holds sockets was
imported, and the database driver waits through the patched ``select``.

``problems`` only looks; ``refuse_if_blocking`` raises ``BlockingDriver`` with every problem
found, so the operator sees them all at once (gunicorn then stops with "Worker failed to boot").
"""

from __future__ import annotations

import sys

# gevent's patch_all covers these; each is needed: sockets and select for every client (Redis,
# HTTP to the chain node, PostgreSQL through psycopg's wait), threading for the locks and
# conditions greenlets wait on (SQLAlchemy's pool, the dashboard publisher), time for sleep.
REQUIRED_PATCHES = ("socket", "select", "selectors", "threading", "time")


class BlockingDriver(RuntimeError):
    """The process would block gevent's loop; the message lists why and what to do."""


def gevent_patched(module: str = "socket") -> bool:
    """Whether gevent has monkey-patched ``module`` in this process (never imports gevent)."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey and monkey.is_module_patched(module))


def _patch_problems() -> list[str]:
    missing = [name for name in REQUIRED_PATCHES if not gevent_patched(name)]
    if not missing:
        return []
    return [
        "The standard library is not patched by gevent ("
        + ", ".join(missing)
        + " not patched): gevent mode needs gunicorn's gevent worker (-k gevent, which patches "
        "before it loads the app) or gevent.monkey.patch_all() before any other import. "
        "Serve with the Procfile's web command, or set SOCKETIO_ASYNC_MODE=threading."
    ]


def _psycopg_problems() -> list[str]:
    """psycopg 3 picks its wait function when imported: its C ``wait_c`` polls the socket itself
    (invisible to gevent) unless gevent had already patched ``select``."""
    if not gevent_patched("select"):
        return []  # the missing patch is the problem to report; psycopg only follows it
    import psycopg.waiting as waiting  # SQLAlchemy imports it anyway when it makes the engine

    found = []
    if getattr(waiting, "wait_c", None) is not None and waiting.wait is waiting.wait_c:
        found.append(
            "psycopg was imported before gevent patched the standard library, so it waits for "
            "PostgreSQL with its own C poll() and blocks every greenlet. Do not import the app "
            "(or anything that imports psycopg) before the patch: no --preload, no portal "
            "imports in gunicorn.conf.py."
        )
    import selectors

    if getattr(waiting, "DefaultSelector", None) is not selectors.DefaultSelector:
        found.append(
            "psycopg holds the unpatched selectors.DefaultSelector (imported before gevent "
            "patched the standard library): connecting to PostgreSQL would block the loop."
        )
    return found


def _psycopg2_problems() -> list[str]:
    extensions = sys.modules.get("psycopg2.extensions")
    if extensions is None or extensions.get_wait_callback() is not None:
        return []
    return [
        "The database driver is psycopg2 without a wait callback: each query blocks every "
        "greenlet. Use psycopg 3 (DATABASE_URL=postgresql+psycopg://...) or install a gevent "
        "wait callback (psycogreen) before the app starts."
    ]


def driver_problems(database_url: str) -> list[str]:
    """What in the configured database driver would block the loop."""
    scheme = database_url.split(":", 1)[0].lower()
    dialect, _, driver = scheme.partition("+")
    if dialect == "sqlite":
        return [
            "SQLite cannot serve under gevent: its calls (and its busy wait for the file lock) "
            "run in C without yielding, freezing every connection. Use PostgreSQL "
            "(DATABASE_URL=postgresql+psycopg://...) for the gevent web command, or "
            "`flask --app wsgi serve` (threading) for the embedded mode."
        ]
    if dialect in ("postgresql", "postgres"):
        if driver in ("", "psycopg2"):
            # SQLAlchemy's default PostgreSQL driver is psycopg2, even with psycopg 3 installed.
            if driver == "" and "psycopg2" not in sys.modules:
                return [
                    "DATABASE_URL names no driver (postgresql://), which SQLAlchemy takes as "
                    "psycopg2, which blocks under gevent. Write postgresql+psycopg://..."
                ]
            return _psycopg2_problems()
        if driver == "psycopg":
            return _psycopg_problems()
        return [f"The database driver {driver!r} is not known to wait cooperatively under gevent."]
    return [f"The database {dialect!r} is not known to work under gevent."]


def problems(database_url: str) -> list[str]:
    """Everything that would block gevent's loop in this process, for this database."""
    return _patch_problems() + driver_problems(database_url)


def refuse_if_blocking(database_url: str) -> None:
    found = problems(database_url)
    if found:
        raise BlockingDriver(
            "Refusing to serve in gevent mode:\n" + "\n".join(f"  - {p}" for p in found)
        )

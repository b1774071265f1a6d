"""Health of this process's dependencies: the database, Redis and the chain, checked live.

One report for every role: ``GET /health`` on a web process, ``flask --app wsgi health --role
worker`` where the Dramatiq workers run (same environment, exit status 1 when unhealthy). Each
check answers within ``HEALTH_TIMEOUT_SECONDS``. The body says what is wrong in words of one
status each and figures (chain id, block number and age): never a URL, an address with a
password or an exception text, which could carry either.

Statuses: "ok"; "down" (no answer, or an error); chain only: "mismatch" (another chain id than
configured or recorded, or the start-up check found the contracts missing) and "stale" (the
latest block is older than ``CHAIN_STALE_SECONDS``).
"""

from __future__ import annotations

import logging
import time
from contextlib import suppress

from flask import Flask
from sqlalchemy import select, text

from portal.extensions import db

log = logging.getLogger(__name__)

OK, DOWN, MISMATCH, STALE = "ok", "down", "mismatch", "stale"


def _timeout(app: Flask) -> float:
    return float(app.config.get("HEALTH_TIMEOUT_SECONDS") or 3)


def check_database() -> str:
    try:
        db.session.execute(text("select 1"))
        return OK
    except Exception:
        log.warning("health: the database did not answer", exc_info=True)
        db.session.rollback()
        return DOWN


def _redis_client(app: Flask):
    """A client of its own with short timeouts (the broker's waits as long as Redis takes)."""
    found = app.extensions.get("portal_health_redis")
    if found is None:
        import redis

        found = redis.Redis.from_url(
            app.config["REDIS_URL"],
            socket_timeout=_timeout(app),
            socket_connect_timeout=_timeout(app),
            retry_on_timeout=False,
        )
        app.extensions["portal_health_redis"] = found
    return found


def check_redis(app: Flask) -> str | None:
    """None when this process uses no Redis (unit tests' in-memory broker)."""
    if not app.config.get("REDIS_URL"):
        return None
    try:
        return OK if _redis_client(app).ping() else DOWN
    except Exception as exc:
        log.warning("health: Redis did not answer: %s", type(exc).__name__)
        return DOWN


def _node(app: Flask):
    """A Web3 of its own for the node, with the health timeout (the app's waits 30 s)."""
    found = app.extensions.get("portal_health_web3")
    if found is None:
        from web3 import Web3

        found = Web3(
            Web3.HTTPProvider(
                app.config["WEB3_PROVIDER_URI"], request_kwargs={"timeout": _timeout(app)}
            )
        )
        app.extensions["portal_health_web3"] = found
    return found


def _recorded_chain_ids() -> set[int]:
    from portal.chain.models import ProjectChain

    try:
        return set(db.session.scalars(select(ProjectChain.chain_id).distinct()))
    except Exception:  # the database check reports it; the chain is judged on what it can
        db.session.rollback()
        return set()


def check_chain(app: Flask, role: str) -> dict | None:
    """The node's status and figures; None when this process has no chain to check.

    A node given by WEB3_PROVIDER_URI is asked every time. The embedded chain lives inside
    ``flask serve`` (make run): it cannot be down, and it mines when asked, so it is never
    stale; it is checked only where it runs, for what the start-up check found.
    """
    if not app.config.get("WEB3_PROVIDER_URI"):
        if role != "web" or not app.config.get("CHAIN_EMBEDDED_ALLOWED", True):
            return None
        found = app.extensions.get("portal_chain_problems")
        return {"status": MISMATCH if found else OK, "embedded": True}
    try:
        w3 = _node(app)
        chain_id = int(w3.eth.chain_id)
        latest = w3.eth.get_block("latest")
    except Exception as exc:
        log.warning("health: the chain node did not answer: %s", type(exc).__name__)
        return {"status": DOWN}
    age = max(0.0, round(time.time() - int(latest["timestamp"]), 1))
    figures = {"chain_id": chain_id, "block": int(latest["number"]), "block_age_seconds": age}
    expected = {app.config["CHAIN_ID"]} if app.config.get("CHAIN_ID") else set()
    expected |= _recorded_chain_ids()
    if (expected and expected != {chain_id}) or app.extensions.get("portal_chain_problems"):
        return {"status": MISMATCH, **figures, "expected_chain_ids": sorted(expected)}
    stale_after = app.config.get("CHAIN_STALE_SECONDS") or 0
    if stale_after and age > stale_after:
        return {"status": STALE, **figures, "stale_after_seconds": stale_after}
    return {"status": OK, **figures}


def report(app: Flask, role: str | None = None) -> tuple[bool, dict]:
    """(healthy, body) for this process; call inside an app context."""
    role = role or app.config.get("ROLE", "web")
    checks = {"database": check_database()}
    redis_status = check_redis(app)
    if redis_status is not None:
        checks["redis"] = redis_status
    chain = check_chain(app, role)
    if chain is not None:
        checks["chain"] = chain["status"]
    healthy = all(status == OK for status in checks.values())
    body = {"status": "ok" if healthy else "degraded", "role": role, "checks": checks}
    if role == "web":
        body["async_mode"] = app.config.get("SOCKETIO_ASYNC_MODE")
    if chain is not None:
        body["chain"] = {k: v for k, v in chain.items() if k != "status"}
        # Open chain alerts (a deep rollback, a nonce gap, a fee ceiling) are for people and
        # monitoring, not for a load balancer: the process itself is fine, so they do not
        # make it "degraded".
        with suppress(Exception):
            from portal.chain import alerts

            body["chain"]["open_alerts"] = alerts.open_counts()
    return healthy, body

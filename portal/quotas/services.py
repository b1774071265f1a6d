"""Sliding-window limits keyed on the thing attacked, shared by every session and process.

Why the database and not the Flask-Limiter storage: the count must be exact under concurrency
(two sessions of one vendor at the same instant must not both get the last code), must hold in
every deployment (the limiter's storage is per-process memory in tests and embedded mode), and
must commit or roll back with the action it counts (a refused or failed request uses nothing).
On PostgreSQL a transaction-scoped advisory lock on (bucket, key) serialises the check and the
count, so concurrent requests for one key queue for a moment instead of both passing; on SQLite
the database serialises writers already.

Rules use the limiter's notation, ``"3 per 10 minutes; 10 per day"``, read from the config.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_babel import ngettext
from limits import parse_many
from sqlalchemy import delete, select, text

from portal import crypto
from portal.errors import DomainError
from portal.extensions import db
from portal.i18n.formatting import number
from portal.quotas.models import QuotaHit
from portal.timeutil import utcnow


class Throttled(DomainError):
    """A limit said no; ``retry_after`` is the number of seconds until one more is allowed."""

    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = max(int(retry_after), 1)


@dataclass(frozen=True)
class Rule:
    amount: int
    seconds: int


@dataclass(frozen=True)
class Quota:
    """A named limit: its bucket, the config setting holding its rules, the refusal's words
    (which may hold ``{when}``, e.g. "in 4 minutes")."""

    bucket: str
    config_name: str
    message: str  # or a lazy string (``_l``): translated when the limit says no


DEFINED: dict[str, Quota] = {}


def define(bucket: str, config_name: str, message: str) -> Quota:
    quota = DEFINED[bucket] = Quota(bucket, config_name, message)
    return quota


def rules(config_name: str) -> list[Rule]:
    return [
        Rule(item.amount, int(item.get_expiry()))
        for item in parse_many(current_app.config[config_name])
    ]


def subject(kind: str, value: str) -> str:
    """A key for a person or number that cannot be joined with any other table's index."""
    # The one-time-code key, under its own purpose prefix (as codes.digest uses it).
    message = f"quota\x1f{kind}\x1f{value}".encode()
    digest = hmac.new(crypto.derived_key("otp"), message, hashlib.sha256)
    return f"{kind}:{digest.hexdigest()[:48]}"


def _lock(bucket: str, key: str) -> None:
    bind = db.session.get_bind()
    if bind.dialect.name != "postgresql":
        return
    number = int.from_bytes(hashlib.sha256(f"{bucket}\x1f{key}".encode()).digest()[:8], "big")
    number -= 1 << 63 if number >= 1 << 63 else 0  # a signed bigint
    db.session.execute(text("SELECT pg_advisory_xact_lock(:n)"), {"n": number})


def wait(bucket: str, key: str, config_name: str) -> int:
    """Seconds until one more hit fits every rule (0: now)."""
    now = utcnow()
    longest = 0.0
    for rule in rules(config_name):
        if rule.amount <= 0:
            longest = max(longest, float(rule.seconds))
            continue
        # Only the ``amount``-th most recent hit in the window matters: if it exists the window
        # is full, and it is the one that must leave first. One row, whatever the limit.
        nth = db.session.scalar(
            select(QuotaHit.at)
            .where(
                QuotaHit.bucket == bucket,
                QuotaHit.key == key,
                QuotaHit.at > now - timedelta(seconds=rule.seconds),
            )
            .order_by(QuotaHit.at.desc())
            .offset(rule.amount - 1)
            .limit(1)
        )
        if nth is not None:
            ready = nth + timedelta(seconds=rule.seconds)
            longest = max(longest, (ready - now).total_seconds())
    return int(longest + 0.999) if longest > 0 else 0


def check(quota: Quota, key: str) -> None:
    """Lock the key for this transaction and raise Throttled if no hit is left."""
    _lock(quota.bucket, key)
    seconds = wait(quota.bucket, key, quota.config_name)
    if seconds:
        # The words are translated now, for the person who will read them.
        raise Throttled(str(quota.message).format(when=when(seconds)), seconds)


def hit(quota: Quota, key: str) -> None:
    """Count one; call after ``check`` in the same transaction."""
    now = utcnow()
    db.session.execute(
        delete(QuotaHit).where(
            QuotaHit.bucket == quota.bucket,
            QuotaHit.key == key,
            QuotaHit.at <= now - _longest(quota),
        )
    )
    db.session.add(QuotaHit(bucket=quota.bucket, key=key, at=now))
    db.session.flush()


def take(quota: Quota, key: str) -> None:
    check(quota, key)
    hit(quota, key)


def _longest(quota: Quota) -> timedelta:
    return timedelta(seconds=max((rule.seconds for rule in rules(quota.config_name)), default=0))


def purge(batch: int = 5000) -> int:
    """Delete the rows that no longer count under their bucket's rules (the sweeper's job), up
    to ``batch`` a bucket. Rows another transaction holds are skipped, not waited for: a request
    counting a key deletes that key's old rows itself (``hit``), and a sweeper that waited on
    them while holding rows the request wants next closed a lock cycle (a deadlock on the
    distribution day). What is skipped goes on the next sweep."""
    now = utcnow()
    done = 0
    for quota in DEFINED.values():
        stale = (
            select(QuotaHit.id)
            .where(QuotaHit.bucket == quota.bucket, QuotaHit.at <= now - _longest(quota))
            .limit(batch)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        done += db.session.execute(
            delete(QuotaHit)
            .where(QuotaHit.id.in_(stale))
            .execution_options(synchronize_session=False)
        ).rowcount
    return done


def when(seconds: int) -> str:
    """'in 40 seconds', 'in 4 minutes', 'in 3 hours', in the page's language."""
    if seconds < 60:
        return ngettext("in %(n)s second", "in %(n)s seconds", seconds, n=number(seconds))
    minutes = (seconds + 59) // 60
    if minutes < 120:
        return ngettext("in %(n)s minute", "in %(n)s minutes", minutes, n=number(minutes))
    hours = (minutes + 59) // 60
    # (``num`` is ngettext's own count argument: the written number goes in ``n``.)
    return ngettext("in %(n)s hour", "in %(n)s hours", hours, n=number(hours))

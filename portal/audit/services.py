"""Appending to and verifying the hash-chained audit log.

Summaries and data never carry personal data: callers pass ids and field names, not values.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from flask import has_request_context
from flask_login import current_user
from sqlalchemy import inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.audit.models import GENESIS, AuditEntry, AuditHead
from portal.extensions import db
from portal.timeutil import utcnow


def _digest(entry: AuditEntry) -> str:
    body = [
        entry.seq,
        entry.at.isoformat(timespec="microseconds"),
        entry.actor_id,
        entry.actor_label,
        entry.action,
        entry.target_type,
        entry.target_id,
        entry.project_id,
        entry.summary,
        entry.data,
        entry.prev_hash,
    ]
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def _current_actor() -> tuple[int | None, str]:
    if has_request_context() and current_user and current_user.is_authenticated:
        return current_user.id, f"user:{current_user.id}"
    return None, "system"


def _locked_head() -> AuditHead:
    # populate_existing: after waiting for the lock, take the row as committed, not a copy
    # this session loaded earlier.
    locked = (
        select(AuditHead)
        .where(AuditHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    head = db.session.execute(locked).scalar_one_or_none()
    if head is None:
        # The very first entry: concurrent first appends must not collide on creating the row.
        insert = pg_insert if db.session.get_bind().dialect.name == "postgresql" else sqlite_insert
        db.session.execute(
            insert(AuditHead).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing()
        )
        head = db.session.execute(locked).scalar_one()
    return head


def record(
    action: str,
    summary: str,
    *,
    target=None,
    target_type: str | None = None,
    target_id=None,
    project_id: int | None = None,
    data: dict | None = None,
    actor_id: int | None = None,
    actor_label: str | None = None,
) -> AuditEntry:
    """Append an entry in the caller's transaction (it commits or rolls back with the change)."""
    if target is not None:
        db.session.flush()  # a new target needs its id
        target_type = target_type or target.__tablename__
        # The primary key, whatever its name (a project's chain state is keyed by project_id).
        key = inspect(target).identity or ()
        target_id = key[0] if len(key) == 1 else "/".join(map(str, key)) or None
    if actor_label is None:
        actor_id, actor_label = _current_actor()
    head = _locked_head()
    entry = AuditEntry(
        seq=head.seq + 1,
        at=utcnow(),
        actor_id=actor_id,
        actor_label=actor_label,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        project_id=project_id,
        summary=summary[:500],
        data=json.dumps(data or {}, separators=(",", ":"), sort_keys=True, default=str),
        prev_hash=head.hash,
    )
    entry.hash = _digest(entry)
    head.seq, head.hash = entry.seq, entry.hash
    db.session.add(entry)
    db.session.flush()
    return entry


@dataclass
class Verification:
    checked: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(batch: int = 1000) -> Verification:
    """Walk the chain in order; report edits (hash mismatch), deletions (gaps) and truncation."""
    problems: list[str] = []
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    last_seq = 0
    while True:
        rows = db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.seq > last_seq)
            .order_by(AuditEntry.seq)
            .limit(batch)
            .execution_options(populate_existing=True)  # what is stored, not what is cached
        ).all()
        if not rows:
            break
        for entry in rows:
            if entry.seq != expected_seq:
                problems.append(f"entries {expected_seq}..{entry.seq - 1} are missing")
            if entry.prev_hash != prev_hash:
                problems.append(f"entry {entry.seq} does not link to the entry before it")
            if _digest(entry) != entry.hash:
                problems.append(f"entry {entry.seq} was changed after it was written")
            expected_seq, prev_hash, last_seq = entry.seq + 1, entry.hash, entry.seq
            checked += 1
    head = db.session.get(AuditHead, 1, populate_existing=True)
    if head is not None and (head.seq != last_seq or head.hash != prev_hash):
        problems.append(f"the log ends at entry {last_seq} but {head.seq} were written")
    return Verification(checked=checked, problems=problems)

"""Appending to and verifying the hash-chained audit log.

Summaries and data never carry personal data: callers pass ids and field names, not values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import has_request_context
from flask_login import current_user
from sqlalchemy import inspect, select

from portal.audit import chaining
from portal.audit.models import GENESIS, AuditEntry, AuditHead
from portal.extensions import db
from portal.timeutil import utcnow


def _current_actor() -> tuple[int | None, str]:
    if has_request_context() and current_user and current_user.is_authenticated:
        return current_user.id, f"user:{current_user.id}"
    return None, "system"


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
    """Append an entry in the caller's transaction (it commits or rolls back with the change).

    The entry is numbered and linked into the chain when the transaction commits (see
    ``portal.audit.chaining``); until then its ``seq`` and ``hash`` are empty.
    """
    if target is not None:
        db.session.flush()  # a new target needs its id
        target_type = target_type or target.__tablename__
        # The primary key, whatever its name (a project's chain state is keyed by project_id).
        key = inspect(target).identity or ()
        target_id = key[0] if len(key) == 1 else "/".join(map(str, key)) or None
    if actor_label is None:
        actor_id, actor_label = _current_actor()
    entry = AuditEntry(
        at=utcnow(),
        actor_id=actor_id,
        actor_label=actor_label,
        action=action,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        project_id=project_id,
        summary=summary[:500],
        data=json.dumps(data or {}, separators=(",", ":"), sort_keys=True, default=str),
    )
    chaining.hold(db.session(), entry)
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
            if chaining.digest(entry) != entry.hash:
                problems.append(f"entry {entry.seq} was changed after it was written")
            expected_seq, prev_hash, last_seq = entry.seq + 1, entry.hash, entry.seq
            checked += 1
    head = db.session.get(AuditHead, 1, populate_existing=True)
    if head is not None and (head.seq != last_seq or head.hash != prev_hash):
        problems.append(f"the log ends at entry {last_seq} but {head.seq} were written")
    return Verification(checked=checked, problems=problems)

"""Linking audit entries into the hash chain at commit time, so the chain's head row is the
last lock a transaction takes.

Every entry carries the previous entry's hash, so appends are serialised on one row
(``audit_head``). Taking that row where an entry is recorded, in the middle of the work, made
it a crossing point: a code entry locked its redemption and the dashboard's totals and then the
head, while a settlement job held the head and waited for those same rows, and PostgreSQL broke
the cycle by undoing one of them (dozens of times a minute on a distribution day). Entries are
therefore kept on the session until the commit, then the transaction's own changes are flushed
(their row locks taken), and only then is the head locked, the entries numbered and written.
Holding the head while nothing else is waited for cannot close a cycle.

An entry follows the transaction it was recorded in: a savepoint rolled back drops the entries
recorded inside it, a rollback drops them all. Reading the audit tables in the same transaction
links what is pending first, so the transaction sees its own entries as before.
"""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import event, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.util import find_tables

from portal.audit.models import GENESIS, AuditEntry, AuditHead
from portal.db_session import before_root_commit

_PENDING = "audit_pending"  # session.info: [(entry, transaction it was recorded in)]
_LINKING = "audit_linking"  # session.info: set while linking (its own reads must not recurse)


def digest(entry: AuditEntry) -> str:
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


def hold(sess: Session, entry: AuditEntry) -> None:
    """Keep ``entry`` until the session's transaction commits (or drops it)."""
    if sess.get_transaction() is None:
        # Begin the (lazy) transaction now, so a rollback before any other statement drops it.
        sess.begin()
    innermost = sess.get_nested_transaction() or sess.get_transaction()
    sess.info.setdefault(_PENDING, []).append((entry, innermost))


def has_pending(sess: Session) -> bool:
    return bool(sess.info.get(_PENDING))


@before_root_commit
def link_pending(sess: Session) -> None:
    """Number, hash and write the held entries; the head row is locked after everything else."""
    pending = sess.info.get(_PENDING)
    if not pending or sess.info.get(_LINKING):
        return
    sess.info[_LINKING] = True
    try:
        # The transaction's own writes first: their row locks are taken before the head's.
        sess.flush()
        head = _locked_head(sess)
        for entry, _ in pending:
            entry.seq = head.seq + 1
            entry.prev_hash = head.hash
            entry.hash = digest(entry)
            head.seq, head.hash = entry.seq, entry.hash
            sess.add(entry)
        sess.info.pop(_PENDING, None)
        sess.flush()
    finally:
        sess.info.pop(_LINKING, None)


def _locked_head(sess: Session) -> AuditHead:
    # populate_existing: after waiting for the lock, take the row as committed, not a copy
    # this session loaded earlier.
    locked = (
        select(AuditHead)
        .where(AuditHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if sess.get_bind().dialect.name == "sqlite":
        # SQLite ignores FOR UPDATE and reads outside a write lock: two appenders read one
        # head and the second's entry collides on its seq. A write that changes nothing takes
        # the database's one write lock first (waiting for an appender holding it), so the
        # head read next is the last one committed.
        sess.execute(
            update(AuditHead)
            .where(AuditHead.id == 1)
            .values(seq=AuditHead.seq)
            .execution_options(synchronize_session=False)
        )
    head = sess.execute(locked).scalar_one_or_none()
    if head is None:
        # The very first entry: concurrent first appends must not collide on creating the row.
        insert = pg_insert if sess.get_bind().dialect.name == "postgresql" else sqlite_insert
        sess.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing())
        head = sess.execute(locked).scalar_one()
    return head


def _inside(tx: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while tx is not None:
        if tx is ended:
            return True
        tx = tx.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(sess: Session, previous_transaction: SessionTransaction) -> None:
    # A savepoint rolled back takes the entries recorded inside it; the end of the whole
    # transaction is handled below.
    pending = sess.info.get(_PENDING)
    if pending and previous_transaction.nested:
        sess.info[_PENDING] = [
            (e, tx) for e, tx in pending if not _inside(tx, previous_transaction)
        ]


@event.listens_for(Session, "after_transaction_end")
def _drop_unfinished(sess: Session, transaction: SessionTransaction) -> None:
    # Rolled back or closed without committing: its entries went with its work. After a commit
    # the list is already empty.
    if transaction.parent is None and not transaction.nested and not sess.info.get(_LINKING):
        sess.info.pop(_PENDING, None)


_AUDIT_TABLES = frozenset({AuditEntry.__table__, AuditHead.__table__})


@event.listens_for(Session, "do_orm_execute")
def _link_before_reading(state) -> None:
    sess = state.session
    if not state.is_select or not sess.info.get(_PENDING) or sess.info.get(_LINKING):
        return
    # Walks the statement only while entries wait, which is rare outside tests.
    tables = find_tables(state.statement, include_joins=True, include_aliases=True)
    if _AUDIT_TABLES.intersection(tables):
        link_pending(sess)

"""The audit log's hash chain: it verifies, and edits, gaps and truncation are all detected."""

from __future__ import annotations

import csv
import io
import itertools
import threading

import pytest
from sqlalchemy import func, select, text

from portal.audit import chaining
from portal.audit import services as audit
from portal.audit.models import AuditEntry
from portal.extensions import db


@pytest.fixture
def chain(app):
    """Five committed entries, as five requests would have left them."""
    for n in range(1, 6):
        audit.record("test.event", f"Event {n}", target_type="thing", target_id=n, data={"n": n})
    db.session.commit()
    return 5


def _tamper(sql: str, **params) -> None:
    """Change the table behind the ORM's back, then read it as a new request would."""
    db.session.execute(text(sql), params)
    db.session.commit()
    db.session.expire_all()


def test_empty_log_verifies(app):
    result = audit.verify()
    assert result.ok
    assert result.checked == 0


def test_intact_chain_verifies(chain):
    result = audit.verify()
    assert result.ok, result.problems
    assert result.checked == chain


def test_entries_link_to_the_one_before(chain):
    entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash


def test_verify_walks_the_chain_in_batches(chain):
    result = audit.verify(batch=2)
    assert result.ok, result.problems
    assert result.checked == chain


def test_domain_events_are_chained_too(make_user, make_project):
    make_project(creator=make_user())
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) >= 2
    assert audit.verify().ok


def test_editing_a_summary_is_detected(chain):
    _tamper("UPDATE audit_entries SET summary = 'Nothing happened' WHERE seq = 3")
    result = audit.verify()
    assert not result.ok
    assert "entry 3 was changed after it was written" in result.problems


def test_editing_an_entry_and_recomputing_its_hash_breaks_the_next_link(chain):
    _tamper("UPDATE audit_entries SET data = '{}' WHERE seq = 2")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.seq == 2))
    _tamper(
        "UPDATE audit_entries SET hash = :hash WHERE seq = 2",
        hash=chaining.digest(entry),
    )
    result = audit.verify()
    assert not result.ok
    assert "entry 3 does not link to the entry before it" in result.problems


def test_deleting_a_middle_entry_is_detected(chain):
    _tamper("DELETE FROM audit_entries WHERE seq = 3")
    result = audit.verify()
    assert not result.ok
    assert "entries 3..3 are missing" in result.problems
    assert result.checked == chain - 1


def test_deleting_the_last_entry_is_detected(chain):
    _tamper("DELETE FROM audit_entries WHERE seq = 5")
    result = audit.verify()
    assert not result.ok
    assert any("ends at entry 4 but 5 were written" in p for p in result.problems)


def test_deleting_every_entry_is_detected(chain):
    _tamper("DELETE FROM audit_entries")
    result = audit.verify()
    assert not result.ok
    assert result.checked == 0


def test_a_rolled_back_change_leaves_no_entry_and_no_gap(chain):
    audit.record("test.event", "Never committed")
    db.session.rollback()
    audit.record("test.event", "Committed")
    db.session.commit()
    seqs = db.session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)).all()
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert audit.verify().ok


def _summaries() -> list[str]:
    return db.session.scalars(select(AuditEntry.summary).order_by(AuditEntry.seq)).all()


def test_an_entry_is_linked_only_when_its_transaction_commits(chain):
    entry = audit.record("test.event", "Held")
    assert entry.seq is None and entry.hash is None  # nothing locked or numbered yet
    db.session.commit()
    assert entry.seq == chain + 1
    assert audit.verify().ok


def test_entries_follow_their_savepoints(chain):
    """A savepoint rolled back drops what was recorded inside it (nested ones too); a savepoint
    released keeps it; the order of the kept entries is the order they were recorded in."""
    audit.record("test.event", "outer before")
    kept = db.session.begin_nested()
    audit.record("test.event", "released savepoint")
    kept.commit()
    dropped = db.session.begin_nested()
    audit.record("test.event", "rolled back savepoint")
    inner = db.session.begin_nested()
    audit.record("test.event", "inside the rolled back one")
    inner.commit()
    dropped.rollback()
    audit.record("test.event", "outer after")
    db.session.commit()
    assert _summaries()[chain:] == ["outer before", "released savepoint", "outer after"]
    assert audit.verify().ok


def test_a_refused_step_drops_its_entries_and_keeps_the_rest(chain):
    from portal.errors import DomainError
    from portal.transactions import attempt

    audit.record("test.event", "before the step")
    with pytest.raises(DomainError), attempt():
        audit.record("test.event", "the refused step")
        raise DomainError("refused")
    db.session.commit()
    assert _summaries()[chain:] == ["before the step"]


def test_reading_the_log_in_the_same_transaction_sees_its_own_entries(chain):
    audit.record("test.event", "read back")
    count = db.session.scalar(select(func.count()).select_from(AuditEntry))
    assert count == chain + 1
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == chain


def test_a_closed_session_forgets_its_entries(chain):
    audit.record("test.event", "never committed")
    db.session.close()
    audit.record("test.event", "next transaction")
    db.session.commit()
    assert _summaries()[chain:] == ["next transaction"]


def test_csv_export_streams_every_entry_outside_the_tests_context(app, chain, make_user, passwords):
    """The body is produced after the view returns. The test's app context would hide a missing
    request context there, so the requests run on a thread of their own, as under a server."""
    user = make_user()
    email = user.email
    db.session.commit()
    seen: dict = {}

    def browse():
        try:
            client = app.test_client()
            client.post("/login", data={"email": email, "password": passwords[email]})
            response = client.get("/audit/export.csv?action=test.")
            seen["status"] = response.status_code
            seen["body"] = response.get_data(as_text=True)
        except Exception as exc:  # reported below, on the test's thread
            seen["error"] = exc

    thread = threading.Thread(target=browse)
    thread.start()
    thread.join(timeout=30)
    assert "error" not in seen, seen.get("error")
    assert seen["status"] == 200
    rows = list(csv.reader(io.StringIO(seen["body"])))
    assert rows[0][:4] == ["seq", "at", "actor", "action"]
    assert [row[0] for row in rows[1:]] == ["5", "4", "3", "2", "1"]  # the filter applied

"""The signer's nonce is taken at the commit, on PostgreSQL.

Every transaction of a signer needs the signer's row for its nonce. Taken where the work
submitted the transaction, that row was held for the rest of the work (checks, RPCs, signing,
the job's own bookkeeping), so transfers queued behind each other. It is now taken at the root
commit, after the transaction's own rows and before the audit chain's head: two units of work
wait for each other's commit only, the nonces stay contiguous in commit order, and work that
rolls back, even at its commit, leaves no gap. The chain is the in-process EVM.
"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from sqlalchemy import event, select

from portal import db_session
from portal.audit import services as audit
from portal.chain import client, signers, txmanager
from portal.chain.models import ChainSigner, ChainTx
from portal.extensions import db
from tests.support import pg_race

pytestmark = pytest.mark.integration

PURPOSE = "test.late_nonce"


@pytest.fixture(scope="module")
def app(race_app):
    with race_app(pool_size=8, CHAIN_EPHEMERAL=True, CHAIN_RECEIPT_WAIT_SECONDS=0) as app:
        with app.app_context():
            signers.operator()
            db.session.commit()
            db.session.remove()
        yield app


def _submit() -> ChainTx:
    """A 0-value transfer to itself: needs no contract, and a known gas limit asks no estimate."""
    signer = signers.operator()
    return txmanager.submit(purpose=PURPOSE, to=signer.address, data="0x", gas_limit=21_000)


def _next_nonce() -> int:
    return db.session.scalar(
        select(ChainSigner.next_nonce).where(ChainSigner.name == signers.OPERATOR)
    )


def _node_count() -> int:
    return client.web3().eth.get_transaction_count(signers.operator().address, "pending")


class _Refused(Exception):
    pass


def test_a_transaction_waits_for_another_s_commit_not_for_its_work(app):
    """A submits and keeps its unit of work open (as a job does while it checks, reads the node
    and signs); B submits and commits meanwhile. With the row taken at submit, B would wait for
    A to commit and A for B: this test would hang on its own timeout."""
    with app.app_context():
        _submit()  # the first use of the process reconciles with the node: not part of the race
        db.session.commit()
        first = _next_nonce()
        db.session.remove()
    submitted, committed = threading.Event(), threading.Event()

    def a() -> tuple[int, float]:
        tx = _submit()
        submitted.set()
        assert committed.wait(15), "B waited for A"
        return tx.id, time.monotonic()

    def b() -> tuple[int, float]:
        assert submitted.wait(15)
        tx = _submit()
        db.session.commit()
        committed.set()
        return tx.id, time.monotonic()

    results = pg_race.race(
        2, lambda i, go: (go(), pg_race.in_own_session(app, (a, b)[i]))[1], what="a transaction"
    )
    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, failures
    (a_id, _), (b_id, _) = results
    with app.app_context():
        a_tx, b_tx = db.session.get(ChainTx, a_id), db.session.get(ChainTx, b_id)
        # Nonces in commit order, contiguous, each signed and stored with its hash.
        assert (b_tx.nonce, a_tx.nonce) == (first, first + 1)
        assert _next_nonce() == first + 2
        assert all(tx.tx_hash and tx.broadcasts for tx in (a_tx, b_tx))
        assert _node_count() == first + 2  # both broadcast, in nonce order
        db.session.remove()


def test_concurrent_commits_hand_out_contiguous_nonces(app):
    with app.app_context():
        first = _next_nonce()
        db.session.remove()
    count = 8

    def work() -> int:
        return _submit().id

    results = pg_race.race(
        count,
        lambda i, go: (go(), pg_race.in_own_session(app, work))[1],
        seed=7,
        what="a transaction",
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    with app.app_context():
        nonces = sorted(db.session.get(ChainTx, tx_id).nonce for tx_id in results)
        assert nonces == list(range(first, first + count))
        assert _next_nonce() == first + count
        db.session.remove()


def test_work_rolled_back_even_at_its_commit_leaves_no_nonce_gap(app, monkeypatch):
    with app.app_context():
        before, on_node = _next_nonce(), _node_count()

        _submit()
        db.session.rollback()
        assert _next_nonce() == before

        # Refused at the commit, after the nonce was given and the call signed (a hook that
        # runs later, the audit head's place): the nonce goes back with the rest.
        def refuse(sess):
            raise _Refused

        hooks = sorted([*db_session._before_root_commit, (50, refuse)], key=lambda h: h[0])
        monkeypatch.setattr(db_session, "_before_root_commit", hooks)
        refused = _submit()
        with pytest.raises(_Refused):
            db.session.commit()
        assert refused.nonce == before  # it had been given...
        db.session.rollback()
        monkeypatch.undo()
        assert _next_nonce() == before  # ...and went back with the rest

        # Submitted inside a savepoint that rolls back: gone with it, never signed; the ones
        # submitted before and after it are.
        kept = [_submit()]
        with contextlib.suppress(_Refused), db.session.begin_nested():
            _submit()
            raise _Refused
        kept.append(_submit())
        db.session.commit()
        assert [tx.nonce for tx in kept] == [before, before + 1]
        assert _next_nonce() == before + 2
        assert _node_count() == on_node + 2  # only the kept ones reached the node
        signed = db.session.scalars(
            select(ChainTx.nonce)
            .where(ChainTx.purpose == PURPOSE, ChainTx.nonce >= before)
            .order_by(ChainTx.nonce)
        ).all()
        assert signed == [before, before + 1]
        pending = db.session.scalars(
            select(ChainTx.id).where(ChainTx.purpose == PURPOSE, ChainTx.nonce.is_(None))
        ).all()
        assert pending == []  # nothing committed unsigned
        db.session.remove()


def test_the_signer_row_is_locked_after_the_work_and_before_the_audit_head(app):
    """The lock order of a commit: the transaction's own rows, the signer's row, the audit head
    (tests/integration/test_audit_lock_order_postgres.py)."""
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()).lower())

    with app.app_context():
        engine = db.engine
        event.listen(engine, "before_cursor_execute", seen)
        try:
            tx = _submit()
            audit.record("test.late_nonce", "recorded before the nonce is taken")
            tx.error = "a change of the work's own row, flushed at the commit"
            statements.clear()
            db.session.commit()
        finally:
            event.remove(engine, "before_cursor_execute", seen)
            db.session.remove()

    def first(pattern: str) -> int:
        return next(i for i, s in enumerate(statements) if pattern in s)

    own_row = first("update chain_txs set error")
    signer_row = first("update chain_signers set next_nonce")
    head = first("from audit_head")
    assert own_row < signer_row < head, statements

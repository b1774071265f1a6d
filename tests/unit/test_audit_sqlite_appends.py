"""Appends to the audit log from several connections to one SQLite file (the embedded mode:
page views and worker threads write at once) number it without a gap or a collision. SQLite
ignores ``FOR UPDATE``: two appenders both read the head, and the second's entry collided on
its ``seq`` (a page answered 409)."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from portal.audit import chaining
from portal.audit.models import AuditEntry, AuditHead
from portal.timeutil import utcnow


def _append(engine, label: str, read_first: bool) -> None:
    with Session(engine) as sess:
        if read_first:  # a page reads before its view is audited
            sess.execute(sa.select(AuditHead.seq)).all()
        entry = AuditEntry(
            at=utcnow(), actor_label=label, action="test.append", summary=label, data="{}"
        )
        chaining.hold(sess, entry)
        chaining.link_pending(sess)
        sess.commit()


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    threads=st.integers(2, 5),
    rounds=st.integers(3, 8),
    read_first=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_appends_from_several_connections_never_collide(
    tmp_path_factory, threads, rounds, read_first
):
    path = tmp_path_factory.mktemp("audit") / "audit.db"
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
    AuditHead.__table__.create(engine)
    AuditEntry.__table__.create(engine)
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(n: int) -> None:
        for r in range(rounds):
            try:
                start.wait()
                _append(engine, f"t{n}-r{r}", read_first[n])
            except BaseException as exc:  # collected: the assertion names it
                errors.append(exc)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    try:
        assert errors == []
        with engine.connect() as conn:
            seqs = conn.execute(sa.select(AuditEntry.seq).order_by(AuditEntry.seq)).scalars().all()
            head = conn.execute(sa.select(AuditHead.seq)).scalar_one()
        assert seqs == list(range(1, threads * rounds + 1))
        assert head == threads * rounds
    finally:
        engine.dispose()

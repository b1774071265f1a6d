"""A refresh notice lost with a dying process: the next page load is fresh all the same.

The totals triggers count every change in the commit that makes it; a stored snapshot carries
the count it was built at, and a load finding another count builds a fresh one.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import text

from portal.dashboard import live, shared, snapshot
from portal.extensions import db
from tests.unit.test_dashboard_live import held, two_projects  # noqa: F401  (fixture)


def _store():
    return shared.store_for(current_app._get_current_object(), db.engine)


def _builds(monkeypatch) -> list[int]:
    built: list[int] = []
    real = snapshot.build

    def counting(conn, project_id, now=None):
        built.append(project_id)
        return real(conn, project_id, now)

    monkeypatch.setattr(snapshot, "build", counting)
    return built


def _lose_the_notice(project_id: int, revoked: int) -> None:
    """A change committed as raw SQL: the dashboard's commit listener never hears of it, as
    when the process died between its commit and the publish."""
    db.session.execute(
        text("UPDATE entitlements SET revoked = :r WHERE project_id = :p"),
        {"r": revoked, "p": project_id},
    )
    db.session.commit()


def test_a_lost_notice_leaves_the_next_load_fresh(two_projects, monkeypatch):  # noqa: F811
    project, _ = two_projects
    before = live.current(project.id)
    assert before["totals"]["revoked"] == 0
    _lose_the_notice(project.id, 300)
    stored = _store().snapshot(project.id)
    assert '"revoked":0' in stored  # nobody refreshed the stored snapshot

    # Older than the grace given to notices on their way: rebuilt on load.
    monkeypatch.setattr(shared, "CHANGE_GRACE", 0.0)
    after = live.current(project.id)
    assert after["totals"]["revoked"] == 300
    assert after["changes"] > before["changes"]
    # And stored for the next loads.
    assert '"revoked":300' in _store().snapshot(project.id)


def test_an_unchanged_count_serves_the_stored_snapshot_without_a_build(
    two_projects,  # noqa: F811
    monkeypatch,
):
    project, _ = two_projects
    live.current(project.id)
    monkeypatch.setattr(shared, "CHANGE_GRACE", 0.0)
    built = _builds(monkeypatch)
    for _ in range(5):
        assert live.current(project.id)["totals"]["revoked"] == 0
    assert built == []


def test_within_the_grace_a_changing_project_is_served_from_the_store(
    two_projects,  # noqa: F811
    monkeypatch,
):
    """Vendors charging: notices are on their way, loads do not each build their own."""
    project, _ = two_projects
    live.current(project.id)
    _lose_the_notice(project.id, 100)
    monkeypatch.setattr(shared, "CHANGE_GRACE", 60.0)
    built = _builds(monkeypatch)
    assert live.current(project.id)["totals"]["revoked"] == 0
    assert built == []


def test_the_count_moves_with_an_orm_change_too(two_projects):  # noqa: F811
    project, other = two_projects
    first = snapshot.changes(db.session.connection(), project.id)
    untouched = snapshot.changes(db.session.connection(), other.id)
    held(project).revoked = 200
    db.session.commit()
    assert snapshot.changes(db.session.connection(), project.id) > first
    assert snapshot.changes(db.session.connection(), other.id) == untouched
    assert live.current(project.id)["totals"]["revoked"] == 200

"""The request is the unit of work: the framework commits after the view, rolls back on error,
and a safe request (GET/HEAD) may write nothing but the audit trail and session rows."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.errors import Conflict
from portal.extensions import db
from portal.settings.models import Setting
from portal.transactions import SAFE_WRITABLE

EXAMPLES = 60 if os.environ.get("CI") == "true" else 25


class Boom(Exception):
    pass


@pytest.fixture
def probe(app):
    """A test view that writes a setting row by ORM or by statement, then maybe raises."""
    from flask import request

    def view():
        how = request.args["how"]
        key = request.args["key"]
        if how == "orm":
            db.session.add(Setting(key=key, value="1"))
            db.session.flush()
        elif how == "statement":
            db.session.execute(Setting.__table__.insert().values(key=key, value="1"))
        if request.args.get("raise") == "1":
            raise Boom("after the write")
        return "done"

    app.add_url_rule("/_probe", "probe", view, methods=["GET", "POST"])
    app.config["WTF_CSRF_ENABLED"] = False

    @app.errorhandler(Boom)
    def boom(exc):
        from portal.web import _render_error

        return _render_error(500, "boom")

    return app.test_client()


def _stored(key: str) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).where(Setting.key == key))


@settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(["GET", "POST"]),
    how=st.sampled_from(["orm", "statement", "none"]),
    fails=st.booleans(),
    key=st.text(alphabet="abcdefghij", min_size=1, max_size=12),
)
def test_a_request_commits_all_of_its_work_or_none(probe, method, how, fails, key):
    key = f"probe.{key}"
    db.session.execute(Setting.__table__.delete().where(Setting.key == key))
    db.session.commit()
    response = probe.open(
        "/_probe", method=method, query_string={"how": how, "key": key, "raise": int(fails)}
    )
    writes = how != "none"
    if method == "GET" and writes:
        # A GET that writes domain state is a bug: refused, and nothing is kept.
        assert response.status_code == 500
        assert _stored(key) == 0
    elif fails:
        assert response.status_code == 500
        assert _stored(key) == 0
    else:
        assert response.status_code == 200
        # Nobody committed in the view: the framework did, after it.
        assert _stored(key) == (1 if writes else 0)


def test_a_conflict_found_at_commit_answers_409_and_keeps_nothing(probe, app):
    db.session.add(Setting(key="probe.taken", value="1"))
    db.session.commit()
    from flask import request

    def view():
        db.session.add(Setting(key=request.args["key"], value="2"))  # flushed at commit only
        return "done"

    app.add_url_rule("/_conflict", "conflict", view, methods=["POST"])
    response = probe.post("/_conflict", query_string={"key": "probe.taken"})
    assert response.status_code == 409
    assert "same moment" in response.get_data(as_text=True)
    assert db.session.scalar(select(Setting.value).where(Setting.key == "probe.taken")) == "1"


def test_safe_requests_may_write_only_the_audit_trail_and_sessions():
    # The list is the whole exception to "a GET changes nothing": keep it this short.
    assert {"audit_entries", "audit_head", "user_sessions", "vendor_sessions"} == SAFE_WRITABLE


def test_no_view_commits_by_hand():
    """Views flush; the framework commits. A hand-written commit in a route module would split
    a request into two transactions again."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "portal"
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for path in root.rglob("*routes.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "session.commit()" in line or "session.rollback()" in line
    ]
    assert offenders == []


def test_after_commit_waits_for_the_real_commit_not_a_savepoint(app, monkeypatch):
    from portal import realtime
    from portal.transactions import attempt

    ran = []
    monkeypatch.setattr(realtime, "evict", lambda room, ended: ran.append(room))
    realtime.evict_after_commit("outer", ended=True)
    with attempt():  # released on success: SQLAlchemy calls after_commit for it too
        realtime.evict_after_commit("inner", ended=True)
        db.session.add(Setting(key="probe.savepoint", value="1"))
    assert ran == []
    try:
        with attempt():
            realtime.evict_after_commit("refused", ended=True)
            raise Conflict("no")
    except Conflict:
        pass
    assert ran == []
    db.session.commit()
    assert ran[:2] == ["outer", "inner"]


def test_a_refused_step_keeps_nothing_and_the_rest_of_the_request_goes_on(app):
    from portal.transactions import attempt

    db.session.add(Setting(key="probe.before", value="1"))
    try:
        with attempt():
            db.session.add(Setting(key="probe.refused", value="1"))
            db.session.flush()
            raise Conflict("refused")
    except Conflict:
        pass
    db.session.commit()
    keys = set(db.session.scalars(select(Setting.key).where(Setting.key.like("probe.%"))))
    assert keys == {"probe.before"}


def test_a_duplicate_inside_a_step_is_a_conflict_not_an_error(app):
    from portal.transactions import attempt

    db.session.add(Setting(key="probe.dup", value="1"))
    db.session.commit()
    with pytest.raises(Conflict), attempt():
        db.session.add(Setting(key="probe.dup", value="2"))
        db.session.flush()
    db.session.add(Setting(key="probe.after", value="1"))  # the session is still usable
    db.session.commit()
    assert db.session.scalar(select(func.count()).where(Setting.key == "probe.after")) == 1


def test_a_failing_after_commit_hook_keeps_the_work_and_renders_the_portal_error_page(
    probe, app, monkeypatch
):
    """The hook runs once the work is committed; its error must not turn into a second error
    (a rollback refused in the "committed" state) hiding behind a bare server page."""
    from flask_sqlalchemy.session import Session as FlaskSession
    from sqlalchemy import event

    def hook(sess):
        if not sess.in_nested_transaction() and sess.info.pop("probe.hook", None):
            raise Boom("in an after-commit hook")

    event.listen(FlaskSession, "after_commit", hook)
    try:
        from flask import request

        def view():
            db.session.add(Setting(key=request.args["key"], value="1"))
            db.session.info["probe.hook"] = True
            return "done"

        app.add_url_rule("/_hooked", "hooked", view, methods=["POST"])
        response = probe.post("/_hooked", query_string={"key": "probe.hooked"})
    finally:
        event.remove(FlaskSession, "after_commit", hook)
    assert response.status_code == 500
    assert "boom" in response.get_data(as_text=True)  # the portal's page, from its handler
    assert _stored("probe.hooked") == 1

"""A socket's rooms follow its user's access: when access shrinks or the session ends, the user's
sockets are closed (after the change commits) and must subscribe again under what is left.

These run in one process without a message queue; tests/integration/test_scale_out.py proves the
same across two web processes on Redis.
"""

from __future__ import annotations

from portal.accounts import services as accounts
from portal.accounts import sessions
from portal.accounts.models import Role, User
from portal.extensions import db, socketio
from portal.projects import services as projects
from portal.projects.models import Project

# Socket handlers end the shared test session (as they end their own in a server), which
# detaches the test's objects: re-read them before changing them.


def _socket(app, login, user):
    client = app.test_client()
    login(client, user)
    return socketio.test_client(app, flask_test_client=client)


def _watch(sio, project) -> dict:
    return sio.emit("subscribe", {"topic": "dashboard", "project_id": project.id}, callback=True)


def test_removing_a_member_closes_their_sockets_and_they_cannot_rejoin(
    app, make_user, make_project, login
):
    staying, leaving = make_user("viewer"), make_user("viewer")
    project = make_project(members=[staying, leaving])
    db.session.commit()
    sockets = {u.id: _socket(app, login, u) for u in (staying, leaving)}
    for sio in sockets.values():
        assert _watch(sio, project)["ok"] is True

    project = db.session.get(Project, project.id)
    projects.set_members(project, {m.user_id for m in project.members} - {leaving.id})
    assert sockets[leaving.id].is_connected(), "closed before the change committed"
    db.session.commit()

    assert not sockets[leaving.id].is_connected()
    assert sockets[staying.id].is_connected()
    again = _socket(app, login, leaving)
    assert again.is_connected()  # still signed in, only no longer in the project
    assert _watch(again, project) == {"ok": False, "error": "forbidden"}


def test_a_rolled_back_removal_closes_nothing(app, make_user, make_project, login):
    user, other = make_user("viewer"), make_user("viewer")
    project = make_project(members=[user, other])
    db.session.commit()
    project_id, other_id = project.id, other.id
    sio = _socket(app, login, user)
    assert _watch(sio, project)["ok"] is True
    projects.set_members(db.session.get(Project, project_id), {other_id})
    db.session.rollback()
    assert sio.is_connected()


def test_a_role_losing_a_permission_closes_its_holders_sockets(app, make_user, make_project, login):
    role = accounts.save_role(None, "watcher", "", {"project.read", "dashboard.read"})
    holder, other = make_user("viewer"), make_user("viewer")
    holder.role = role
    project = make_project(members=[holder, other])
    db.session.commit()
    sockets = {u.id: _socket(app, login, u) for u in (holder, other)}
    for sio in sockets.values():
        assert _watch(sio, project)["ok"] is True

    role = db.session.get(Role, role.id)
    accounts.save_role(role, "watcher", "", {"project.read", "dashboard.read", "job.read"})
    db.session.commit()
    assert sockets[holder.id].is_connected(), "a grant takes nothing away"

    role = db.session.get(Role, role.id)
    accounts.save_role(role, "watcher", "", {"project.read"})
    db.session.commit()
    assert not sockets[holder.id].is_connected()
    assert sockets[other.id].is_connected()
    assert _watch(_socket(app, login, holder), project) == {"ok": False, "error": "forbidden"}


def test_a_changed_role_or_deactivation_closes_the_users_sockets(
    app, make_user, make_project, login
):
    user = make_user("programme manager")
    project = make_project(members=[user])
    db.session.commit()
    sio = _socket(app, login, user)
    assert _watch(sio, project)["ok"] is True
    user = db.session.get(User, user.id)
    accounts.set_user_role(user, accounts.role_by_name("field agent"), active=True)
    db.session.commit()
    assert not sio.is_connected()

    sio = _socket(app, login, user)
    assert sio.is_connected()
    sessions.revoke_all(user.id)
    db.session.commit()
    assert not sio.is_connected()


def test_a_topic_for_a_row_out_of_reach_is_refused_not_raised(app, make_user, login):
    """Topic handlers look rows up with the services' ``get_visible`` (``NotFound``): refused
    like any other row the user may not see."""
    sio = _socket(app, login, make_user("admin"))
    for topic in ("disbursement", "import", "job", "transactions", "dashboard"):
        ack = sio.emit("subscribe", {"topic": topic, "id": 999, "project_id": 999}, callback=True)
        assert ack == {"ok": False, "error": "forbidden"}, topic
    assert sio.is_connected()


def test_deactivating_a_user_tells_their_sockets_the_session_ended(
    app, make_user, make_project, login
):
    """Deactivation changes the user (access) and revokes their sessions (ended): the socket is
    told its session ended, once, and closed."""
    user = make_user("viewer")
    db.session.commit()
    sio = _socket(app, login, user)
    user = db.session.get(User, user.id)
    accounts.set_user_role(user, user.role, active=False)
    sessions.revoke_all(user.id)
    received: list = []
    original = sio.socketio.server.manager.emit

    def spy(event, data, *args, **kwargs):
        received.append((event, sio.is_connected()))
        return original(event, data, *args, **kwargs)

    sio.socketio.server.manager.emit = spy
    try:
        db.session.commit()
    finally:
        sio.socketio.server.manager.emit = original
    assert not sio.is_connected()
    assert received == [("session.ended", True)], "told before it closed, and once"

"""Payout statuses reach staff pages live: the ``payouts`` topic answers with a snapshot and
then hears each change once it commits; a member of another project hears nothing."""

from __future__ import annotations

from portal.accounts.services import save_role
from portal.extensions import db, socketio
from portal.payouts import services
from portal.payouts.models import PENDING, SENT, Payout


def _socket(app, login, user):
    client = app.test_client()
    login(client, user)
    return socketio.test_client(app, flask_test_client=client)


def test_the_payouts_topic_hears_changes(app, login, payout_world, make_user, make_project):
    project_id, vendor_id = payout_world.project.id, payout_world.vendor.id
    payout = services.request_payout(project_id, vendor_id, 1000)
    db.session.commit()
    payout_id = payout.id
    outsider = make_user("viewer")
    outsider.role = save_role(None, "payout reader", "", {"payout.read", "project.read"})
    make_project(name="Elsewhere", creator=outsider)
    db.session.commit()

    sio = _socket(app, login, payout_world.user)
    other = _socket(app, login, outsider)
    ack = sio.emit("subscribe", {"topic": "payouts"}, callback=True)
    assert ack["ok"] and ack["snapshot"]["counts"] == {"pending": 1}
    assert other.emit("subscribe", {"topic": "payouts"}, callback=True)["snapshot"]["payouts"] == []
    sio.get_received()
    other.get_received()

    assert services.move(payout_id, (PENDING,), SENT, why="test")
    db.session.commit()
    heard = [e["args"][0] for e in sio.get_received() if e["name"] == "payout.updated"]
    for event in heard:
        event.pop("ts")  # when it was emitted, added by the emitter
    assert heard == [
        {
            "id": payout_id,
            "project_id": project_id,
            "status": "sent",
            "books": "",
            "failure_reason": "",
        }
    ]
    assert [e for e in other.get_received() if e["name"] == "payout.updated"] == []
    assert db.session.get(Payout, payout_id).status == SENT


def test_a_user_without_payout_read_cannot_subscribe(app, login, payout_world, make_user):
    viewer = make_user("viewer")
    db.session.commit()
    sio = _socket(app, login, viewer)
    assert sio.emit("subscribe", {"topic": "payouts"}, callback=True) == {
        "ok": False,
        "error": "forbidden",
    }

"""Messages "to check" in the delivery log: staff settle one, or the filtered selection, as
delivered or as not sent (queued again exactly once), with the message.manage permission and
an audit entry that holds no number and no text."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text

from portal.accounts.models import Role
from portal.audit.models import AuditEntry
from portal.comms import review
from portal.comms import services as comms
from portal.comms.models import OutboxMessage
from portal.extensions import db
from portal.jobs.models import Job
from tests.support.comms_provider import FakeProviders

NUMBER = "+9779841234567"
BODY = "Distribution at the school on Friday from 9."


@pytest.fixture
def providers(app):
    with FakeProviders() as fake:
        fake.hold = True
        app.config.update(fake.sms_settings(), SMS_TIMEOUT_SECONDS=1)
        yield fake


def to_check(worker, number: str = NUMBER) -> OutboxMessage:
    """A message whose send was interrupted by a dead worker: it is in review."""
    message = comms.send_sms(number, BODY, "notice")
    db.session.commit()
    db.session.execute(text("update jobs set attempts = 1 where id = :id"), {"id": message.job_id})
    db.session.commit()
    worker.run("comms")
    db.session.expire_all()
    found = db.session.get(OutboxMessage, message.id)
    assert found.status == "review"
    return found


def reload(message_id: int) -> OutboxMessage:
    db.session.expire_all()
    return db.session.get(OutboxMessage, message_id)


def settle(client, message_id: int, outcome: str):
    return client.post(f"/delivery-log/{message_id}/review", data={"outcome": outcome})


def test_not_sent_queues_it_again_once_and_it_is_sent_once(
    app, client, providers, worker, make_user, login
):
    message = to_check(worker)
    first_job = message.job_id
    assert providers.posts == 0
    login(client, make_user("admin"))
    page = client.get("/delivery-log?status=review").get_data(as_text=True)
    assert f"/delivery-log/{message.id}/review" in page and "data-confirm=" in page
    assert settle(client, message.id, "not_sent").status_code == 302
    again = reload(message.id)
    assert again.status == "queued" and again.job_id != first_job and again.recorded_claim == 0
    # A second click (or a second member of staff) changes nothing and queues nothing more.
    jobs_before = db.session.scalar(select(func.count(Job.id)))
    response = settle(client, message.id, "not_sent")
    assert response.status_code == 302
    assert db.session.scalar(select(func.count(Job.id))) == jobs_before
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Nothing changed" in follow
    worker.run("comms")
    assert reload(message.id).status == "sent"
    assert providers.posts == 1 and providers.delivered[NUMBER] == 1
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.action == "message.review_requeued")
    )
    assert entry.target_id == str(message.id)
    assert NUMBER not in entry.summary + entry.data and "Friday" not in entry.summary + entry.data
    assert json.loads(entry.data)["message_ids"] == [message.id]


def test_delivered_settles_it_without_sending(app, client, providers, worker, make_user, login):
    message = to_check(worker)
    login(client, make_user("admin"))
    assert settle(client, message.id, "delivered").status_code == 302
    done = reload(message.id)
    assert done.status == "delivered" and done.delivered_at is not None
    # Only a message to check is settled here: a delivered one is not moved back to the queue.
    assert settle(client, message.id, "not_sent").status_code == 302
    assert reload(message.id).status == "delivered"
    worker.run("comms")
    assert providers.posts == 0
    assert settle(client, message.id, "nonsense").status_code == 400


def test_the_filtered_selection_is_settled_at_once(
    app, client, providers, worker, make_user, login
):
    messages = [to_check(worker, f"+97798412345{i:02d}") for i in range(3)]
    other = comms.send_sms("+9779841234599", BODY, "notice")  # queued, not to check
    db.session.commit()
    login(client, make_user("admin"))
    page = client.get("/delivery-log?status=review").get_data(as_text=True)
    assert "Mark all 3 as delivered" in page
    response = client.post(
        "/delivery-log/review", data={"outcome": "delivered", "channel": "sms", "campaign": ""}
    )
    assert response.status_code == 302 and "status=review" in response.headers["Location"]
    assert [reload(m.id).status for m in messages] == ["delivered"] * 3
    assert reload(other.id).status == "queued"
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.action == "message.review_delivered")
    )
    data = json.loads(entry.data)
    assert data["count"] == 3 and sorted(data["message_ids"]) == sorted(m.id for m in messages)
    assert "+977" not in entry.summary + entry.data


def test_settling_needs_message_manage(app, client, providers, worker, make_user, login):
    message = to_check(worker)
    reader = make_user("programme manager")
    role = db.session.get(Role, reader.role_id)
    role.set_permissions(role.permissions - {"message.manage"})
    db.session.commit()
    login(client, reader)
    page = client.get("/delivery-log?status=review").get_data(as_text=True)
    assert f"/delivery-log/{message.id}/review" not in page
    assert settle(client, message.id, "not_sent").status_code == 403
    assert client.post("/delivery-log/review", data={"outcome": "not_sent"}).status_code == 403
    assert reload(message.id).status == "review"


def test_settle_moves_each_message_once_whatever_the_order(app, providers, worker):
    messages = [to_check(worker, f"+97798412346{i:02d}") for i in range(2)]
    query = select(OutboxMessage).where(OutboxMessage.id.in_([m.id for m in messages]))
    assert review.settle(query, review.NOT_SENT) == [m.id for m in messages]
    assert review.settle(query, review.NOT_SENT) == []
    assert review.settle(query, review.WAS_DELIVERED) == []
    db.session.commit()
    jobs = db.session.scalars(
        select(Job.payload_json).where(Job.kind == "comms.sms").order_by(Job.id)
    ).all()
    named = [json.loads(p)["message_id"] for p in jobs]
    # The first job of each, and exactly one more.
    assert sorted(named) == sorted([m.id for m in messages] * 2)

"""Approvals through the pages and the socket: the pending list, the badge, decisions with
their reasons, cancel, scope, the project's threshold form, and live updates."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.approvals import live
from portal.approvals import services as approvals
from portal.approvals.models import ApprovalDecision, ApprovalRequest
from portal.audit.models import AuditEntry
from portal.chain.models import Funding
from portal.extensions import db, socketio
from tests.support import chain
from tests.support.approvals import decide


@pytest.fixture
def world(app, make_user, make_project, worker):
    asker = make_user("finance", name="Asker Person")
    approver = make_user("finance approver", name="Approver Person")
    viewer = make_user("viewer", name="Viewer Person")
    outsider = make_user("finance approver", name="Outsider Person")
    project = make_project(status="active", members=[asker, approver, viewer])
    make_project(name="Elsewhere", status="active", members=[outsider])
    db.session.commit()
    chain.deploy(worker, project)
    return {
        "project": project,
        "asker": asker,
        "approver": approver,
        "viewer": viewer,
        "outsider": outsider,
    }


def _as(app, login, user):
    client = app.test_client()
    login(client, user)
    return client


def _ask(client, project, amount="250.00", note="grant B"):
    project_id = project if isinstance(project, int) else project.id
    data = {"amount": amount, "note": note, "confirmed": "yes"}
    answer = client.post(f"/projects/{project_id}/chain/fund", data=data)
    assert answer.status_code == 302, answer.data[:1000]
    return db.session.scalar(select(ApprovalRequest).order_by(ApprovalRequest.id.desc()))


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_the_approver_sees_it_waiting_with_a_badge_and_approves_it(app, login, world, worker):
    asker = _as(app, login, world["asker"])
    approver = _as(app, login, world["approver"])
    req = _ask(asker, world["project"])
    chain_page = asker.get(f"/projects/{world['project'].id}/chain").get_data(as_text=True)
    assert "Waiting for approval by Approver Person" in chain_page
    assert "Asker Person" not in chain_page.split("Waiting for approval by")[1].split(".")[0]

    page = approver.get("/approvals").get_data(as_text=True)
    assert f"Fund {world['project'].name} with NPR\u00a0250.00 (grant B)" in page
    assert 'aria-label="1 waiting for you">1</span>' in page  # the nav badge
    assert "data-approvals-count-home>1<" in approver.get("/").get_data(as_text=True)
    assert approver.get("/approvals/waiting").get_json()["waiting"] == 1
    # The requester is not asked to approve their own request.
    assert asker.get("/approvals/waiting").get_json()["waiting"] == 0
    assert "Nothing waits for your approval" in asker.get("/approvals").get_data(as_text=True)

    answer = decide(approver, req.id, "approve", "grant letter seen")
    assert answer.status_code == 302
    db.session.refresh(req)
    assert req.status == "executed" and _count(Funding) == 1
    assert approver.get("/approvals/waiting").get_json()["waiting"] == 0
    shown = approver.get(f"/approvals/{req.id}").get_data(as_text=True)
    assert "Approved by Approver Person" in shown and "grant letter seen" in shown
    worker.run("contracts")
    assert b"250.00" in asker.get(f"/projects/{world['project'].id}/chain").data


def test_a_rejection_without_a_reason_is_a_field_error_and_writes_nothing(app, login, world):
    asker = _as(app, login, world["asker"])
    approver = _as(app, login, world["approver"])
    req = _ask(asker, world["project"])
    answer = decide(approver, req.id, "reject", "  ")
    assert answer.status_code == 422
    assert "Say why you reject it" in answer.get_data(as_text=True)
    assert _count(ApprovalDecision) == 0
    assert db.session.get(ApprovalRequest, req.id).status == "pending"
    odd = decide(approver, req.id, "maybe", "")
    assert odd.status_code == 422 and "Approve or reject" in odd.get_data(as_text=True)

    assert decide(approver, req.id, "reject", "Budget line closed").status_code == 302
    mine = asker.get("/approvals").get_data(as_text=True)
    assert "Rejected by Approver Person" in mine and "Budget line closed" in mine
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "approval.rejected"))
    assert "Budget line closed" in audit.data and audit.actor_id == world["approver"].id


def test_who_may_not_decide_is_refused(app, login, world):
    asker = _as(app, login, world["asker"])
    req = _ask(asker, world["project"])
    assert decide(asker, req.id, "approve").status_code == 403  # own request
    viewer = _as(app, login, world["viewer"])
    assert decide(viewer, req.id, "approve").status_code == 403  # no approve permission
    outsider = _as(app, login, world["outsider"])
    assert outsider.get(f"/approvals/{req.id}").status_code == 404  # another project's
    assert decide(outsider, req.id, "approve").status_code == 404
    assert outsider.get("/approvals/waiting").get_json()["waiting"] == 0
    assert _count(ApprovalDecision) == 0 and _count(Funding) == 0


def test_the_requester_cancels_from_the_page(app, login, world):
    asker = _as(app, login, world["asker"])
    approver = _as(app, login, world["approver"])
    req = _ask(asker, world["project"])
    assert approver.post(f"/approvals/{req.id}/cancel").status_code == 403
    assert asker.post(f"/approvals/{req.id}/cancel").status_code == 302
    assert db.session.get(ApprovalRequest, req.id).status == "cancelled"
    assert asker.post(f"/approvals/{req.id}/cancel").status_code == 409
    assert decide(approver, req.id, "approve").status_code == 409


def test_starting_a_disbursement_asks_and_the_page_says_so(
    app, login, world, worker, make_beneficiary
):
    project = world["project"]
    people = [make_beneficiary(project=project) for _ in range(2)]
    chain.fund(worker, project, "100")
    asker = _as(app, login, world["asker"])
    made = asker.post(
        f"/projects/{project.id}/disbursements/new",
        data={
            "title": "Nov",
            "amount": "5",
            "group_id": 0,
            "refs": " ".join(p.ref for p in people),
            "batch_size": 10,
        },
    )
    d_id = int(made.headers["Location"].rsplit("/", 1)[1])
    assert asker.post(f"/disbursements/{d_id}/start").status_code == 302
    page = asker.get(f"/disbursements/{d_id}").get_data(as_text=True)
    assert "Waiting for approval by Approver Person" in page and "Start allocation" not in page
    assert asker.post(f"/disbursements/{d_id}/start").status_code == 409  # asked once
    approver = _as(app, login, world["approver"])
    listed = approver.get("/approvals").get_data(as_text=True)
    assert "Start “Nov”" in listed and "2 people × NPR\u00a05.00 = NPR\u00a010.00" in listed
    req = db.session.scalar(select(ApprovalRequest).where(ApprovalRequest.subject_id == d_id))
    assert decide(approver, req.id, "approve").status_code == 302
    worker.run("contracts")
    assert "completed" in asker.get(f"/disbursements/{d_id}").get_data(as_text=True)


def test_the_threshold_is_set_on_the_project_page_with_an_amount(
    app, login, world, make_user, make_project
):
    manager = make_user("admin", name="Manager")
    client = _as(app, login, manager)
    url = f"/projects/{world['project'].id}/approvals"
    assert client.get(url).status_code == 200
    bad = client.post(url, data={"second_above": "1e5"})
    assert bad.status_code == 422 and approvals.threshold(world["project"].id) is None
    assert client.post(url, data={"second_above": "1,000.50"}).status_code == 302
    assert approvals.threshold(world["project"].id) == 100_050
    assert "NPR\u00a01,000.50" in client.get(url).get_data(as_text=True)
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.action == "approval.threshold_changed")
    )
    assert entry.actor_id == manager.id and '"after":100050' in entry.data
    asker = _as(app, login, world["asker"])
    assert _ask(asker, world["project"], "1,000.51").approvals_needed == 2
    assert _ask(asker, world["project"], "1,000.50").approvals_needed == 1
    assert client.post(url, data={"second_above": ""}).status_code == 302
    assert approvals.threshold(world["project"].id) is None
    # A project without a token cannot take an amount yet.
    fresh = make_project(name="No token yet", status="active")
    db.session.commit()
    refused = client.post(f"/projects/{fresh.id}/approvals", data={"second_above": "5"})
    assert refused.status_code == 422 and b"Set up the project" in refused.data
    # Only those who manage projects change it.
    assert _as(app, login, world["asker"]).post(url, data={"second_above": "1"}).status_code == 403


def test_the_approvals_topic_joins_project_rooms_and_hears_changes(app, login, world):
    # Every client signs in first: a socket event ends the test's session (as a real one does).
    approver_http = _as(app, login, world["approver"])
    asker = _as(app, login, world["asker"])
    outsider_http = _as(app, login, world["outsider"])
    project_id = world["project"].id
    # The test's app context is shared: a request of the socket's own client first, so that
    # connect (which reads the signed-in user from it) sees that client's user.
    approver_http.get("/approvals/waiting")
    sio = socketio.test_client(app, flask_test_client=approver_http)
    ack = sio.emit("subscribe", {"topic": "approvals"}, callback=True)
    assert ack["ok"] and ack["snapshot"] == {"waiting": 0}
    sio.get_received()
    req = _ask(asker, project_id)
    heard = [m["args"][0] for m in sio.get_received() if m["name"] == live.CHANGED]
    assert [(h["id"], h["status"]) for h in heard] == [(req.id, "pending")]
    assert "amount" not in heard[0] and "note" not in heard[0]  # the page asks for the rest

    outsider_http.get("/approvals/waiting")
    other = socketio.test_client(app, flask_test_client=outsider_http)
    assert other.emit("subscribe", {"topic": "approvals"}, callback=True)["ok"]
    other.get_received()
    assert decide(approver_http, req.id, "approve").status_code == 302
    assert [m for m in other.get_received() if m["name"] == live.CHANGED] == []
    heard = [m["args"][0] for m in sio.get_received() if m["name"] == live.CHANGED]
    assert heard[-1]["status"] == "executed"
    sio.disconnect()
    other.disconnect()

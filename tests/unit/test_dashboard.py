"""The dashboard's aggregate on a real allocation and real redemptions (in-process EVM), its
page and its socket topic, and who may see them."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.accounts.services import save_role
from portal.chain import signers
from portal.chain.models import ChainTx
from portal.comms.models import OutboxMessage
from portal.dashboard import snapshot
from portal.extensions import db, socketio
from portal.jobs import dispatch
from portal.projects import services as projects
from portal.redemptions import services as redemptions
from portal.timeutil import utcnow
from tests.support import chain

CODE = re.compile(r"\b(\d{6})\b")


def last_code() -> str:
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
    return CODE.search(message.body).group(1)


def read(project_id: int, **kwargs) -> dict:
    return snapshot.build(db.session.connection(), project_id, **kwargs)


def redeem(project, pc, person, vendor, amount: int):
    """Start a charge and enter the beneficiary's code, as the vendor's phone does."""
    started = redemptions.start(vendor, project, pc, person, amount, "card")
    db.session.commit()
    result = redemptions.confirm(vendor, started.id, last_code())
    db.session.commit()
    assert result.ok
    return started


@pytest.fixture
def allocated(app, worker, make_project, make_beneficiary, make_vendor):
    """A project with 4 people allocated 20.00 AID each and two approved vendors."""
    project = make_project(status="active")
    people = [make_beneficiary(project=project) for _ in range(4)]
    shops = [
        make_vendor(project=project, status="approved", name=name)
        for name in ("Hill Grocers", "River Pharmacy")
    ]
    db.session.commit()
    pc = chain.deploy(worker, project, symbol="AID", decimals=2)
    chain.fund(worker, project, "100.00")
    chain.allocate(worker, project, amount="20.00", beneficiary_ids=[p.id for p in people])
    return project, pc, people, shops


def test_allocation_shows_in_totals_before_any_redemption(allocated):
    project, _, _, _ = allocated
    s = read(project.id)
    assert s["currency"] == "NPR" and s["decimals"] == 2 and s["chain_status"] == "deployed"
    assert s["totals"] == {
        "allocated": 8000,
        "redeemed": 0,
        "pending": 0,
        "revoked": 0,
        "remaining": 8000,
    }
    assert s["display"] == {
        "allocated": "80.00",
        "redeemed": "0.00",
        "pending": "0.00",
        "remaining": "80.00",
    }
    assert s["pending"] == {"count": 0, "amount": 0}
    assert s["people"] == {"allocated": 4, "served": 0}
    assert s["vendors"] == [] and s["feed"] == [] and s["failed_txs"] == []
    assert s["queues"][0] == {
        "queue": "contracts",
        "label": "payments",
        "highlight": True,
        "queued": 0,
        "retrying": 0,
        "running": 0,
        "total": 0,
    }
    assert s["batches_in_flight"] == 0
    assert sum(s["chart"]["amounts"]) == 0 and s["chart"]["base"] == 0


def test_redemptions_fill_vendors_feed_people_and_chart(allocated, worker):
    project, pc, people, (grocer, pharmacy) = allocated
    first = redeem(project, pc, people[0], grocer, 1250)
    redeem(project, pc, people[1], grocer, 500)
    worker.run("contracts")  # both settle on chain
    last = redeem(project, pc, people[2], pharmacy, 300)  # accepted, not yet settled

    s = read(project.id)
    # Redeemed is what the chain confirmed; the pharmacy's payment is pending, shown apart, and
    # already out of what people can still spend.
    assert s["totals"]["redeemed"] == 1750 and s["totals"]["remaining"] == 5950
    assert s["totals"]["pending"] == 300 and s["pending"] == {"count": 1, "amount": 300}
    assert s["display"]["redeemed"] == "17.50" and s["display"]["pending"] == "3.00"
    # Served counts people with a settled redemption: the pharmacy's is still on its way.
    assert s["people"] == {"allocated": 4, "served": 2}
    assert [
        (v["name"], v["count"], v["amount"], v["pending"], v["pending_amount"])
        for v in s["vendors"]
    ] == [
        ("Hill Grocers", 2, 1750, 0, 0),
        ("River Pharmacy", 0, 0, 1, 300),
    ]
    assert s["vendors"][1]["pending_display"] == "3.00"
    assert s["vendors"][0]["amount_display"] == "17.50" and s["vendors"][0]["last_at"].endswith("Z")
    assert s["feed"][0]["id"] == last.id and s["feed"][0]["label"] == "pending"
    assert s["feed"][-1]["id"] == first.id and s["feed"][-1]["label"] == "confirmed"
    assert s["feed"][-1]["ref"] == people[0].ref
    # The contracts queue holds the pharmacy's transfer job.
    assert s["queues"][0]["queue"] == "contracts" and s["queues"][0]["queued"] == 1
    # The chart's running total ends on the redeemed figure: confirmed payments only.
    chart = s["chart"]
    assert len(chart["amounts"]) == snapshot.CHART_MINUTES
    assert chart["base"] + sum(chart["amounts"]) == 1750 and sum(chart["counts"]) == 2


def test_no_personal_data_in_the_snapshot(allocated, worker):
    project, pc, people, (grocer, _) = allocated
    redeem(project, pc, people[0], grocer, 100)
    text = json.dumps(read(project.id))
    pii = people[0].pii
    for secret in (pii.name, pii.phone, pii.phone.lstrip("+"), grocer.phone, grocer.contact_name):
        assert secret not in text
    assert people[0].ref in text


def test_chart_buckets_by_minute_and_keeps_older_amounts_in_the_base(allocated, worker):
    project, pc, people, (grocer, _) = allocated
    redeem(project, pc, people[0], grocer, 700)
    pending = read(project.id)["chart"]
    assert sum(pending["amounts"]) == 0 and pending["base"] == 0  # not confirmed yet
    worker.run("contracts")
    now = utcnow()
    # Read as if four hours later: the redemption has left the window, but not the total.
    later = read(project.id, now=now + timedelta(hours=4))
    assert sum(later["chart"]["amounts"]) == 0 and later["chart"]["base"] == 700
    current = read(project.id, now=now)
    assert current["chart"]["amounts"][-1] == 700 or current["chart"]["amounts"][-2] == 700
    start = current["chart"]["start"]
    assert start % 60 == 0 and current["chart"]["step"] == 60


def test_failed_transactions_and_queue_depth(allocated):
    project, _, _, _ = allocated
    operator = signers.operator()
    for n, status in enumerate(("reverted", "failed", "confirmed")):
        db.session.add(
            ChainTx(
                signer_id=operator.id,
                project_id=project.id,
                chain_id=1,
                nonce=None,
                purpose="redeem",
                gas_limit=21000,
                status=status,
                error=f"boom {n} " + "x" * 400,
            )
        )
    dispatch.enqueue("chain.confirm", {"tx_id": 0}, project_id=project.id)
    dispatch.enqueue("system.diagnostic", {}, project_id=project.id)
    db.session.commit()
    s = read(project.id)
    assert s["failed_tx_total"] == 2
    assert [t["status"] for t in s["failed_txs"]] == ["failed", "reverted"]
    assert len(s["failed_txs"][0]["error"]) == snapshot.ERROR_CHARS
    queues = {q["queue"]: q for q in s["queues"]}
    assert queues["contracts"]["queued"] == 1 and queues["contracts"]["highlight"]
    assert s["queues"][0]["queue"] == "contracts"
    assert sum(q["total"] for q in s["queues"]) == 2


def test_a_project_without_contracts_still_has_a_dashboard(app, make_project):
    project = make_project()
    db.session.commit()
    s = read(project.id)
    assert s["chain_status"] == "not_deployed" and s["currency"] == "NPR"
    assert s["display"]["allocated"] == "0"


# --- the page and the socket topic ----------------------------------------------------------


def test_page_shows_the_figures(allocated, client, login, make_user):
    project, _, _, _ = allocated
    viewer = make_user("viewer")
    projects.set_members(project, {viewer.id})
    login(client, viewer)
    page = client.get(f"/projects/{project.id}/live")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-kpi="allocated">80.00<' in html
    assert "js/dashboard.js" in html and "vendor/uPlot.iife.min.js" in html
    assert "<script>" not in html  # CSP: no inline script, data rides in data- attributes
    assert 'data-kpi="pending">0.00<' in html and 'id="dash-pending" data-count="0"' in html
    embedded = re.search(r"data-snapshot='([^']*)'", html).group(1)
    assert json.loads(embedded.replace("&#34;", '"'))["totals"]["allocated"] == 8000
    # A viewer cannot open transactions, so failed ones are not links.
    assert 'data-tx-base=""' in html


def test_page_needs_the_permission(app, client, login, make_user, make_project):
    project = make_project()
    nobody = save_role(None, "nobody", "holds no permission", {"project.read"})
    user = make_user("viewer")
    user.role = nobody
    db.session.commit()
    login(client, user)
    assert client.get(f"/projects/{project.id}/live").status_code == 403


def test_page_of_another_project_is_not_found(app, client, login, make_user, make_project):
    mine = make_project()
    theirs = make_project()
    viewer = make_user("viewer")
    projects.set_members(mine, {viewer.id})
    login(client, viewer)
    assert client.get(f"/projects/{mine.id}/live").status_code == 200
    assert client.get(f"/projects/{theirs.id}/live").status_code == 404
    assert client.get("/projects/999999/live").status_code == 404


def test_anonymous_is_sent_to_sign_in(app, client, make_project):
    project = make_project()
    db.session.commit()
    response = client.get(f"/projects/{project.id}/live")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_subscribe_answers_with_the_snapshot(allocated, client, login, make_user):
    project, _, _, _ = allocated
    login(client, make_user("admin"))
    sio = socketio.test_client(app=client.application, flask_test_client=client)
    ack = sio.emit("subscribe", {"topic": "dashboard", "project_id": project.id}, callback=True)
    assert ack["ok"] is True and ack["topic"] == "dashboard"
    assert ack["snapshot"]["totals"]["allocated"] == 8000
    sio.disconnect()


@pytest.mark.parametrize("params", [{"project_id": "1"}, {"project_id": True}, {}])
def test_subscribe_refuses_a_malformed_project(app, client, login, make_user, params):
    login(client, make_user("admin"))
    sio = socketio.test_client(app, flask_test_client=client)
    ack = sio.emit("subscribe", {"topic": "dashboard", **params}, callback=True)
    assert ack == {"ok": False, "error": "forbidden"}
    sio.disconnect()


def test_subscribe_refuses_another_projects_user(app, client, login, make_user, make_project):
    mine, theirs = make_project(), make_project()
    viewer = make_user("viewer")
    projects.set_members(mine, {viewer.id})
    mine_id, theirs_id = mine.id, theirs.id  # a socket event ends the session's objects
    login(client, viewer)
    sio = socketio.test_client(app, flask_test_client=client)
    ok = sio.emit("subscribe", {"topic": "dashboard", "project_id": mine_id}, callback=True)
    assert ok["ok"] is True
    ack = sio.emit("subscribe", {"topic": "dashboard", "project_id": theirs_id}, callback=True)
    assert ack == {"ok": False, "error": "forbidden"}
    sio.disconnect()


def test_subscribe_needs_the_permission(app, client, login, make_user, make_project):
    project = make_project()
    nobody = save_role(None, "nobody", "holds no permission", {"project.read"})
    user = make_user("viewer")
    user.role = nobody
    db.session.commit()
    login(client, user)
    sio = socketio.test_client(app, flask_test_client=client)
    ack = sio.emit("subscribe", {"topic": "dashboard", "project_id": project.id}, callback=True)
    assert ack == {"ok": False, "error": "forbidden"}
    sio.disconnect()


def test_page_loads_and_subscribes_reuse_the_snapshot_sent_after_the_change(
    allocated, client, login, make_user, monkeypatch
):
    """The commit's snapshot is stored; the page and a subscribe answer with it, unbuilt."""
    project, pc, people, (grocer, _) = allocated
    redeem(project, pc, people[0], grocer, 250)  # its commit sends (and stores) a snapshot
    login(client, make_user("admin"))
    built = []
    real = snapshot.build
    monkeypatch.setattr(snapshot, "build", lambda *a, **k: built.append(1) or real(*a, **k))
    html = client.get(f"/projects/{project.id}/live").get_data(as_text=True)
    assert 'data-kpi="pending">2.50<' in html and 'data-kpi="redeemed">0.00<' in html
    sio = socketio.test_client(app=client.application, flask_test_client=client)
    ack = sio.emit("subscribe", {"topic": "dashboard", "project_id": project.id}, callback=True)
    assert ack["snapshot"]["pending"] == {"count": 1, "amount": 250}
    sio.disconnect()
    assert built == []

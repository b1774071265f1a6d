"""The settlement pages: the vendor's cash-out on the phone (form, errors, live status), the
staff list, a settlement's trail, the settlement run, finance's actions, scope and guards."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from portal.approvals import services as approvals
from portal.approvals.models import ApprovalRequest
from portal.extensions import db, socketio
from portal.payouts import methods
from portal.payouts import services as payouts
from portal.payouts.models import FAILED as PAYOUT_FAILED_STATUS
from portal.payouts.models import PAID as PAYOUT_PAID
from portal.payouts.models import SENT
from portal.projects import services as projects
from portal.settlements.models import Settlement, SettlementRun
from tests.unit.test_vendor_portal import sign_in


def _count() -> int:
    return db.session.scalar(select(func.count(Settlement.id)))


def test_the_vendor_cashes_out_from_the_phone_and_sees_paid_live(world, app, worker):
    project, _pc, vendor, finance, approver = world
    projects.set_members(project, {finance.id, approver.id})
    approver_id = approver.id
    client = app.test_client()
    sign_in(client, vendor)
    home = client.get("/vendor/cash-out").get_data(as_text=True)
    assert "NPR\u00a012.50" in home  # the project's currency, not the token's symbol
    form = client.get(f"/vendor/cash-out/{project.id}").get_data(as_text=True)
    assert "12.50" in form and "•••• 6789" in form and "/vendor/payout-methods" in form
    # Bad amounts come back as field errors and write nothing.
    method = methods.default_of(vendor.id)
    for bad in ("", "abc", "12.501", "13.00", "0", "-1"):
        answer = client.post(
            f"/vendor/cash-out/{project.id}", data={"amount": bad, "method_id": method.id}
        )
        assert answer.status_code == 400, bad
        assert _count() == 0
    assert (
        client.post(
            f"/vendor/cash-out/{project.id}", data={"amount": "1.00", "method_id": 99999}
        ).status_code
        == 400
    )
    answer = client.post(
        f"/vendor/cash-out/{project.id}", data={"amount": "10.00", "method_id": method.id}
    )
    assert answer.status_code == 302
    row = db.session.scalar(select(Settlement))
    assert (row.amount, row.by_vendor, row.status) == (1000, True, "requested")
    row_id, approval_id = row.id, row.approval_id
    sio = socketio.test_client(app, flask_test_client=client)
    ack = sio.emit("subscribe", {"topic": "cash-outs"}, callback=True)
    assert ack["ok"] and ack["snapshot"]["settlements"][0]["status"] == "requested"
    sio.get_received()
    from portal.accounts.models import User

    approver = db.session.get(User, approver_id)  # the requests closed the test's session
    approvals.approve(db.session.get(ApprovalRequest, approval_id), approver)
    db.session.commit()
    worker.run("contracts")
    row = db.session.get(Settlement, row_id)
    payouts.move(row.payout_id, ("pending",), SENT, why="test")
    payouts.move(row.payout_id, (SENT,), PAYOUT_PAID, why="test")
    db.session.commit()
    heard = [e["args"][0] for e in sio.get_received() if e["name"] == "settlement.updated"]
    assert heard[-1]["status"] == "paid" and heard[-1]["label"] == "Paid"
    page = client.get("/vendor/cash-out").get_data(as_text=True)
    assert f'data-settlement-id="{row_id}"' in page and "Paid" in page


def test_another_vendors_project_is_not_found(world, app, make_project, make_vendor):
    _project, _pc, vendor, _finance, _approver = world
    other = make_project(status="active")
    db.session.commit()
    client = app.test_client()
    sign_in(client, vendor)
    assert client.get(f"/vendor/cash-out/{other.id}").status_code == 404


def test_staff_pages_trail_and_scope(world, app, worker, make_user, login, make_project):
    project, _pc, _vendor, finance, approver = world
    projects.set_members(project, {finance.id, approver.id})
    outsider = make_user("finance")
    elsewhere = make_project(status="active")
    projects.set_members(elsewhere, {outsider.id})
    db.session.commit()
    staff = app.test_client()
    login(staff, finance)
    # Open a run: one settlement for the vendor, nobody skipped for lack of a method.
    page = staff.get(f"/projects/{project.id}/settlements/run")
    assert page.status_code == 200
    bad = staff.post(
        f"/projects/{project.id}/settlements/run",
        data={"period_from": "2026-12-31", "period_to": "2026-01-01"},
    )
    assert bad.status_code == 422 and _count() == 0
    answer = staff.post(
        f"/projects/{project.id}/settlements/run",
        data={"period_from": "2026-01-01", "period_to": "2099-12-31"},
    )
    assert answer.status_code == 302
    run = db.session.scalar(select(SettlementRun))
    row = db.session.scalar(select(Settlement))
    assert (run.created_count, run.total, row.amount, row.run_id) == (1, 1250, 1250, run.id)
    assert "12.50" in staff.get(answer.location).get_data(as_text=True)
    # The finance user asked: they cannot approve it; the approver can.
    ask = db.session.get(ApprovalRequest, row.approval_id)
    assert ask.requested_by_id == finance.id
    approvals.approve(ask, approver)
    db.session.commit()
    worker.run("contracts")
    listing = staff.get(f"/projects/{project.id}/settlements").get_data(as_text=True)
    assert f'data-settlement-id="{row.id}"' in listing
    filtered = staff.get(f"/projects/{project.id}/settlements?status=failed").get_data(as_text=True)
    assert f'data-settlement-id="{row.id}"' not in filtered
    assert staff.get(f"/projects/{project.id}/settlements?status=nope").status_code == 400
    show = staff.get(f"/settlements/{row.id}").get_data(as_text=True)
    assert "Settle transaction" in show and "Payout #" in show and "settlement.approved" not in show
    assert "Approved by user" in show or "Approved" in show
    # The payout fails: finance retries, then closes it with a reason.
    db.session.refresh(row)
    payouts.move(row.payout_id, ("pending",), PAYOUT_FAILED_STATUS, why="t", reason="bank said no")
    db.session.commit()
    assert "Retry the payout" in staff.get(f"/settlements/{row.id}").get_data(as_text=True)
    assert staff.post(f"/settlements/{row.id}/close", data={"reason": ""}).status_code == 302
    db.session.refresh(row)
    assert row.status == "payout_failed"
    staff.post(f"/settlements/{row.id}/close", data={"reason": "paid in cash"})
    db.session.refresh(row)
    assert row.status == "failed" and row.burned
    closed = staff.get(f"/settlements/{row.id}").get_data(as_text=True)
    # What the page shows, without the words its scripts may write (the JSON block).
    shown = re.sub(r'<script type="application/json" id="i18n-strings">.*?</script>', "", closed)
    assert "closed after its payment failed" in shown and "pay it again" not in shown
    # Another project's member sees none of it; an approver without manage cannot act.
    other = app.test_client()
    login(other, outsider)
    assert other.get(f"/settlements/{row.id}").status_code == 404
    assert other.get(f"/projects/{project.id}/settlements").status_code == 404
    assert other.post(f"/projects/{project.id}/settlements/run").status_code == 404
    viewer = app.test_client()
    login(viewer, approver)
    assert viewer.get(f"/settlements/{row.id}").status_code == 200
    assert viewer.post(f"/settlements/{row.id}/close", data={"reason": "x"}).status_code == 403
    assert viewer.get(f"/projects/{project.id}/settlements/run").status_code == 403


def test_a_run_skips_vendors_without_a_method_or_balance(world, app, make_vendor, login):
    project, _pc, _vendor, finance, _approver = world
    make_vendor(project=project, status="approved", name="No Account Shop")
    projects.set_members(project, {finance.id})
    db.session.commit()
    staff = app.test_client()
    login(staff, finance)
    answer = staff.post(
        f"/projects/{project.id}/settlements/run",
        data={"period_from": "2026-01-01", "period_to": "2099-12-31"},
    )
    page = staff.get(answer.location).get_data(as_text=True)
    assert "No Account Shop: nothing to cash out" in page
    # A second run finds nothing left for the first vendor.
    again = staff.post(
        f"/projects/{project.id}/settlements/run",
        data={"period_from": "2026-01-01", "period_to": "2099-12-31"},
    )
    assert "nothing to cash out" in staff.get(again.location).get_data(as_text=True)
    assert _count() == 1


def test_a_period_before_the_redemptions_cashes_out_nothing(world, app, login):
    project, _pc, _vendor, finance, _approver = world
    projects.set_members(project, {finance.id})
    db.session.commit()
    staff = app.test_client()
    login(staff, finance)
    answer = staff.post(
        f"/projects/{project.id}/settlements/run",
        data={"period_from": "2020-01-01", "period_to": "2020-01-31"},
    )
    assert answer.status_code == 302 and _count() == 0


def test_the_staff_topic_hears_its_projects_only(world, app, login, make_user, make_project):
    project, _pc, vendor, finance, approver = world
    projects.set_members(project, {finance.id, approver.id})
    outsider = make_user("finance")
    projects.set_members(make_project(status="active"), {outsider.id})
    viewer = make_user("viewer")
    db.session.commit()
    mine, theirs, nobody = app.test_client(), app.test_client(), app.test_client()
    login(mine, finance)
    login(theirs, outsider)
    login(nobody, viewer)
    project_id, vendor_id = project.id, vendor.id
    sockets, acks = [], []
    for c in (mine, theirs, nobody):
        # The test's app context is shared: a request of the socket's own client first, so that
        # connect (which reads the signed-in user from it) sees that client's user.
        c.get("/approvals/waiting")
        sockets.append(socketio.test_client(app, flask_test_client=c))
        acks.append(sockets[-1].emit("subscribe", {"topic": "settlements"}, callback=True))
    assert acks[0]["ok"] and acks[1]["ok"] and not acks[2]["ok"], acks
    for s in sockets:
        s.get_received()
    from portal.projects.models import Project
    from portal.settlements import services

    project = db.session.get(Project, project_id)
    services.request(project, vendor_id, 100, method_id=None, by_vendor=True)
    db.session.commit()
    heard = [[e for e in s.get_received() if e["name"] == "settlement.updated"] for s in sockets]
    assert heard[0] and heard[0][0]["args"][0]["status"] == "requested"
    assert not heard[1] and not heard[2]


def test_the_list_filters_by_the_day_asked(world, app, login):
    from datetime import datetime

    from portal.settlements import services

    project, _pc, vendor, finance, _approver = world
    projects.set_members(project, {finance.id})
    early = services.request(project, vendor.id, 300, method_id=None, user_id=finance.id)
    late = services.request(project, vendor.id, 400, method_id=None, user_id=finance.id)
    early.created_at = datetime(2026, 3, 10, 23, 59)
    late.created_at = datetime(2026, 3, 11, 0, 0)
    db.session.commit()
    early_id, late_id, project_id = early.id, late.id, project.id
    staff = app.test_client()
    login(staff, finance)

    def shown(query: str) -> set[int]:
        page = staff.get(f"/projects/{project_id}/settlements?{query}")
        assert page.status_code == 200, query
        text = page.get_data(as_text=True)
        return {i for i in (early_id, late_id) if f'data-settlement-id="{i}"' in text}

    assert shown("") == {early_id, late_id}
    assert shown("from=2026-03-11") == {late_id}
    assert shown("to=2026-03-10") == {early_id}  # the whole last day, not its midnight
    assert shown("from=2026-03-10&to=2026-03-10") == {early_id}
    assert shown("from=2026-03-12") == set()
    assert 'value="2026-03-11"' in staff.get(
        f"/projects/{project_id}/settlements?from=2026-03-11"
    ).get_data(as_text=True)
    for bad in ("from=yesterday", "to=2026-02-30", "from=0001-01-01"):
        assert staff.get(f"/projects/{project_id}/settlements?{bad}").status_code == 400, bad


def test_what_is_owed_to_vendors_per_vendor_and_as_csv(
    world, app, worker, login, make_user, make_project
):
    import csv
    import io

    from portal.settlements import owed, services

    project, _pc, vendor, finance, approver = world
    vendor.name = "=Corner Shop"  # a name a spreadsheet would run: escaped in the file
    projects.set_members(project, {finance.id, approver.id})
    outsider = make_user("finance")
    projects.set_members(make_project(status="active"), {outsider.id})
    db.session.commit()
    staff = app.test_client()
    login(staff, finance)
    url = f"/projects/{project.id}/settlements/owed"

    def figures() -> list[list[str]]:
        answer = staff.get(url + ".csv")
        assert answer.status_code == 200 and answer.mimetype == "text/csv"
        return list(csv.reader(io.StringIO(answer.get_data(as_text=True))))

    page = staff.get(url).get_data(as_text=True)
    assert f'data-vendor-id="{vendor.id}"' in page and "12.50" in page
    rows = figures()
    assert rows[0] == list(owed.COLUMNS) and rows[0][4] == "owed"
    assert rows[1][1:7] == ["'=Corner Shop", "12.50", "0.00", "12.50", "0.00", "12.50"]
    assert rows[2][1:7] == ["Total", "12.50", "0.00", "12.50", "0.00", "12.50"]
    # Asked for 3.00: being cashed out, not settled yet.
    row = services.request(project, vendor.id, 300, method_id=None, user_id=finance.id)
    db.session.commit()
    assert figures()[1][4:7] == ["12.50", "3.00", "9.50"]
    # Approved and burned on chain: no longer owed.
    approvals.approve(db.session.get(ApprovalRequest, row.approval_id), approver)
    db.session.commit()
    worker.run("contracts")
    assert figures()[1][2:7] == ["12.50", "3.00", "9.50", "0.00", "9.50"]
    listing = staff.get(f"/projects/{project.id}/settlements").get_data(as_text=True)
    assert 'id="owed-link"' in listing and url in listing
    # Another project's member sees nothing of it; someone without settlement.read is refused.
    other = app.test_client()
    login(other, outsider)
    assert other.get(url).status_code == 404 and other.get(url + ".csv").status_code == 404
    viewer = app.test_client()
    login(viewer, make_user("viewer"))
    assert viewer.get(url).status_code == 403

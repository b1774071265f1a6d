"""No dead ends on a disbursement: a draft can be changed or cancelled, its shortfall is shown
before Start, its page names the group and lists the people with their status (exportable)."""

from __future__ import annotations

import csv
import io
import zipfile

from sqlalchemy import select, update

from portal.approvals.models import CANCELLED as REQUEST_CANCELLED
from portal.approvals.models import PENDING, ApprovalRequest
from portal.beneficiaries import groups
from portal.chain.models import ProjectChain
from portal.disbursements import services
from portal.disbursements.models import (
    B_CONFIRMED,
    B_FAILED,
    CANCELLED,
    DRAFT,
    Disbursement,
    DisbursementBatch,
    DisbursementItem,
)
from portal.extensions import db
from tests.support import chain


def _world(make_project, make_beneficiary, make_user, people=4, funded=10_000):
    user = make_user("admin")
    project = make_project(status="active", members=[user])
    persons = [make_beneficiary(project=project) for _ in range(people)]
    group = groups.create(project, "Ward 3", "food basket")
    groups.add_members(group, persons)
    chain.pretend_deployed(project)
    db.session.flush()
    db.session.execute(
        update(ProjectChain).where(ProjectChain.project_id == project.id).values(funded=funded)
    )
    db.session.commit()
    return user, project, group, persons


def _people(html: str) -> str:
    start = html.index('id="people-table"')
    return html[start : html.index("</table>", start)]


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))


def _draft(client, project, group, amount="30", size=2, title="November"):
    made = client.post(
        f"/projects/{project.id}/disbursements/new",
        data={"title": title, "amount": amount, "group_id": group.id, "batch_size": size},
    )
    assert made.status_code == 302, made.data[:500]
    return db.session.get(Disbursement, int(made.headers["Location"].rsplit("/", 1)[1]))


def test_a_draft_too_large_shows_its_shortfall_and_can_be_reduced_then_started(
    app, client, login, make_user, make_project, make_beneficiary
):
    user, project, group, _persons = _world(make_project, make_beneficiary, make_user)
    login(client, user)
    d = _draft(client, project, group, amount="30")  # 4 x 30.00 = 120.00 > 100.00 funded
    page = client.get(f"/disbursements/{d.id}").get_data(as_text=True)
    assert "Needs NPR\u00a020.00 more" in page and "To the group" in page and "Ward 3" in page
    assert "Reduce the amount" in page and "Fund the project" in page

    form = client.get(f"/disbursements/{d.id}/edit").get_data(as_text=True)
    assert 'value="November"' in form and "Save the draft" in form
    bad = client.post(
        f"/disbursements/{d.id}/edit",
        data={"title": "November", "amount": "abc", "group_id": group.id, "batch_size": 3},
    )
    assert bad.status_code == 422 and 'value="abc"' in bad.get_data(as_text=True)
    db.session.expire_all()
    assert (d.amount_each, len(d.batches)) == (3000, 2)  # a refused change changes nothing

    saved = client.post(
        f"/disbursements/{d.id}/edit",
        data={"title": "November, less", "amount": "25", "group_id": group.id, "batch_size": 3},
    )
    assert saved.status_code == 302
    db.session.expire_all()
    assert (d.title, d.amount_each, d.total, d.beneficiaries) == ("November, less", 2500, 10_000, 4)
    assert [b.size for b in d.batches] == [3, 1]
    assert (
        db.session.scalar(
            select(DisbursementItem.amount).where(DisbursementItem.disbursement_id == d.id).limit(1)
        )
        == 2500
    )
    page = client.get(f"/disbursements/{d.id}").get_data(as_text=True)
    assert "more: fund the project" not in page and "Needs NPR" not in page
    assert client.post(f"/disbursements/{d.id}/start").status_code == 302
    assert db.session.scalar(select(ApprovalRequest.status)) == PENDING


def test_changing_a_draft_withdraws_the_request_to_start_it(
    app, client, login, make_user, make_project, make_beneficiary
):
    user, project, group, _persons = _world(make_project, make_beneficiary, make_user)
    login(client, user)
    d = _draft(client, project, group, amount="10")
    client.post(f"/disbursements/{d.id}/start")
    request = db.session.scalar(select(ApprovalRequest))
    assert request.status == PENDING
    client.post(
        f"/disbursements/{d.id}/edit",
        data={"title": "x", "amount": "20", "group_id": group.id, "batch_size": 2},
    )
    db.session.expire_all()
    assert request.status == REQUEST_CANCELLED and request.open_key is None
    # Asking again is possible: the old request no longer holds the subject.
    assert client.post(f"/disbursements/{d.id}/start").status_code == 302


def test_cancel_asks_first_then_cancels_and_frees_nothing_twice(
    app, client, login, make_user, make_project, make_beneficiary
):
    user, project, group, _persons = _world(make_project, make_beneficiary, make_user)
    login(client, user)
    d = _draft(client, project, group, amount="10")
    asked = client.post(f"/disbursements/{d.id}/cancel")
    text = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Cancel the draft “November”?" in text
    assert 'name="confirmed" value="yes"' in text and 'name="csrf_token"' in text
    db.session.expire_all()
    assert d.status == DRAFT  # asked, not done
    done = client.post(f"/disbursements/{d.id}/cancel", data={"confirmed": "yes"})
    assert done.status_code == 302
    db.session.expire_all()
    assert d.status == CANCELLED and services.committed_total(project.id) == 0
    page = client.get(f"/disbursements/{d.id}").get_data(as_text=True)
    assert "This draft was cancelled" in page and "Start allocation" not in page
    again = client.post(f"/disbursements/{d.id}/cancel", data={"confirmed": "yes"})
    assert again.status_code == 409
    edit = client.get(f"/disbursements/{d.id}/edit")
    assert edit.status_code == 302  # a cancelled draft is not edited: back to its page


def test_a_started_disbursement_is_neither_changed_nor_cancelled(
    app, client, login, make_user, make_project, make_beneficiary
):
    user, project, group, _persons = _world(make_project, make_beneficiary, make_user)
    login(client, user)
    d = _draft(client, project, group, amount="10")
    services.start(d, user.id)
    db.session.commit()
    refused = client.post(
        f"/disbursements/{d.id}/edit",
        data={"title": "x", "amount": "1", "group_id": group.id, "batch_size": 2},
    )
    assert refused.status_code == 302
    db.session.expire_all()
    assert d.amount_each == 1000
    assert (
        client.post(f"/disbursements/{d.id}/cancel", data={"confirmed": "yes"}).status_code == 409
    )


def test_the_people_list_shows_each_persons_status_pages_and_exports(
    app, client, login, make_user, make_project, make_beneficiary
):
    user, project, group, persons = _world(make_project, make_beneficiary, make_user, people=60)
    login(client, user)
    d = _draft(client, project, group, amount="1", size=20)
    page = client.get(f"/disbursements/{d.id}").get_data(as_text=True)
    assert _people(page).count('data-status="not started"') == 50 and 'rel="next"' in page
    services.start(d, user.id)
    db.session.flush()
    first, second, _third = d.batches
    db.session.execute(
        update(DisbursementBatch).where(DisbursementBatch.id == first.id).values(status=B_CONFIRMED)
    )
    db.session.execute(
        update(DisbursementBatch).where(DisbursementBatch.id == second.id).values(status=B_FAILED)
    )
    db.session.commit()
    page = client.get(f"/disbursements/{d.id}?who=failed").get_data(as_text=True)
    assert _people(page).count('data-status="failed"') == 20 and "allocated 20" in page
    assert persons[0].ref not in _people(page) and persons[20].ref in _people(page)
    second_page = client.get(f"/disbursements/{d.id}?page=2").get_data(as_text=True)
    assert _people(second_page).count('data-status="pending"') == 10 and 'rel="prev"' in second_page
    assert client.get(f"/disbursements/{d.id}?who=nonsense").status_code == 400

    exported = client.post(f"/disbursements/{d.id}/people.csv")
    assert exported.status_code == 200
    rows = _csv(exported)
    assert rows[0] == ["Beneficiary", "Name", "Amount (NPR)", "Status", "Batch"]
    assert len(rows) == 61 and rows[1][2:] == ["1.00", "allocated", "1"]
    assert rows[21][3] == "failed" and rows[60][3] == "pending"
    xlsx = client.post(f"/disbursements/{d.id}/people.xlsx")
    with zipfile.ZipFile(io.BytesIO(xlsx.data)) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
    assert persons[59].ref in sheet and "<f>" not in sheet
    assert client.post(f"/disbursements/{d.id}/people.pdf").status_code == 404


def test_exported_names_are_escaped_and_only_for_those_who_may_read_them(
    app, client, login, make_user, make_project, make_beneficiary
):
    from portal.projects import services as projects

    user, project, group, _persons = _world(make_project, make_beneficiary, make_user, people=1)
    sneaky = make_beneficiary(project=project, name="=HYPERLINK(1)")
    groups.add_members(group, [sneaky])
    finance = make_user("finance")  # may disburse, may not read personal data
    projects.set_members(project, {user.id, finance.id})
    db.session.commit()
    login(client, user)
    d = _draft(client, project, group, amount="1")
    rows = _csv(client.post(f"/disbursements/{d.id}/people.csv"))
    assert "'=HYPERLINK(1)" in [r[1] for r in rows]
    client.post("/logout")
    login(client, finance)
    rows = _csv(client.post(f"/disbursements/{d.id}/people.csv"))
    assert rows[0] == ["Beneficiary", "Amount (NPR)", "Status", "Batch"] and len(rows) == 3
    page = client.get(f"/disbursements/{d.id}").get_data(as_text=True)
    assert "HYPERLINK" not in page and sneaky.ref in page

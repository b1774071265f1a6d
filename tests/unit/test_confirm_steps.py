"""Actions hard to undo ask first: without ``confirmed=yes`` (no JavaScript, or a form posted
from elsewhere) the answer is a confirm page that changes nothing; its Yes posts the same fields
again. Funding, removing a person from a group or a project, unassigning a vendor."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.approvals.models import ApprovalRequest
from portal.beneficiaries import groups
from portal.beneficiaries.models import GroupMember, ProjectBeneficiary
from portal.extensions import db
from portal.vendors.models import VendorProject
from tests.support import chain


def _hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))


def _count(model, **where) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return db.session.scalar(query)


@pytest.fixture
def world(app, make_user, make_project, make_beneficiary, make_vendor):
    user = make_user("admin")
    project = make_project(name="Winter Relief", status="active", members=[user])
    person = make_beneficiary(project=project)
    group = groups.create(project, "Ward 3", "food")
    groups.add_members(group, [person])
    vendor = make_vendor(project=project, name="Gita's shop")
    db.session.commit()
    return user, project, person, group, vendor


def _ask_then_confirm(client, url, data, count, question):
    before = count()
    asked = client.post(url, data=data)
    html = asked.get_data(as_text=True)
    assert asked.status_code == 200 and question in html
    assert count() == before  # nothing changed yet
    fields = _hidden(html)
    assert fields.pop("confirmed") == "yes" and "csrf_token" in fields
    fields.pop("csrf_token")
    assert fields == {k: str(v) for k, v in data.items()}  # the same fields again
    done = client.post(url, data={**fields, "confirmed": "yes"})
    assert done.status_code == 302
    return before


@pytest.mark.parametrize("what", ["group member", "project member", "vendor"])
def test_removals_ask_first(client, login, world, what):
    user, project, person, group, vendor = world
    url, model, where, question = {
        "group member": (
            f"/groups/{group.id}/members/{person.id}/remove",
            GroupMember,
            {"group_id": group.id},
            f"Remove {person.ref} from the group Ward 3?",
        ),
        "project member": (
            f"/beneficiaries/{person.id}/projects/{project.id}/remove",
            ProjectBeneficiary,
            {"project_id": project.id},
            f"Remove {person.ref} from Winter Relief?",
        ),
        "vendor": (
            f"/vendors/{vendor.id}/projects/{project.id}/remove",
            VendorProject,
            {"project_id": project.id},
            "Remove Gita&#39;s shop from Winter Relief?",
        ),
    }[what]
    login(client, user)
    before = _ask_then_confirm(client, url, {}, lambda: _count(model, **where), question)
    assert _count(model, **where) == before - 1


def test_funding_asks_first_with_the_amount_in_the_currency(client, login, world):
    user, project, _person, _group, _vendor = world
    chain.pretend_deployed(project)
    db.session.commit()
    login(client, user)
    bad = client.post(f"/projects/{project.id}/chain/fund", data={"amount": "1.001"})
    assert bad.status_code == 422  # a typing error is shown on the form, not asked about
    _ask_then_confirm(
        client,
        f"/projects/{project.id}/chain/fund",
        {"amount": "2,500.50", "note": "grant B"},
        lambda: _count(ApprovalRequest),
        "Fund Winter Relief with NPR\u00a02,500.50?",
    )
    assert db.session.scalar(select(ApprovalRequest.amount)) == 250_050


def test_the_confirm_page_needs_the_permission_of_the_action(client, login, make_user, world):
    _user, project, person, group, _vendor = world
    viewer = make_user("viewer")
    login(client, viewer)
    assert client.post(f"/groups/{group.id}/members/{person.id}/remove").status_code == 403
    assert (
        client.post(f"/projects/{project.id}/chain/fund", data={"amount": "1"}).status_code == 403
    )


def test_each_status_move_says_what_it_does_and_asks_first(client, login, make_user, make_project):
    user = make_user("admin")
    project = make_project(name="Spring Relief", creator=user)
    db.session.commit()
    login(client, user)
    page = client.get(f"/projects/{project.id}").get_data(as_text=True)
    assert "Activate the project" in page and "Close the project" in page
    activate = page[page.index('value="active"') - 600 : page.index('value="active"')]
    assert "cannot be reopened" not in activate  # activating is not closing

    _ask_then_confirm(
        client,
        f"/projects/{project.id}/status",
        {"status": "active"},
        lambda: int(project.status == "active"),
        "Activate Spring Relief?",
    )
    db.session.expire_all()
    assert project.status == "active"
    asked = client.post(f"/projects/{project.id}/status", data={"status": "closed"})
    text = asked.get_data(as_text=True)
    assert "Close Spring Relief for good?" in text and "cannot be reopened" in text
    assert "ask for what the project still owes them" in text
    db.session.expire_all()
    assert project.status == "active"
    client.post(f"/projects/{project.id}/status", data={"status": "closed", "confirmed": "yes"})
    db.session.expire_all()
    assert project.status == "closed"
    page = client.get(f"/projects/{project.id}").get_data(as_text=True)
    assert "cannot be reopened" in page and "Activate the project" not in page

"""Projects: the status lifecycle, the closed-is-read-only rule, and who sees which project."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.beneficiaries import groups
from portal.beneficiaries import services as beneficiaries
from portal.errors import InvalidTransition, NotFound, ProjectClosed
from portal.extensions import db
from portal.projects import services as projects
from portal.projects.models import ACTIVE, CLOSED, DRAFT


def test_create_makes_the_creator_a_member_and_refuses_unknown_type(make_user):
    creator = make_user(role="programme manager")
    project = projects.create({"name": "Flood response", "type": "cash"}, creator)
    assert project.status == DRAFT
    assert projects.member_project_ids(creator) == {project.id}
    with pytest.raises(InvalidTransition, match="type"):
        projects.create({"name": "Other", "type": "lottery"}, creator)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ((ACTIVE,), ACTIVE),
        ((ACTIVE, CLOSED), CLOSED),
        ((CLOSED,), CLOSED),
    ],
)
def test_allowed_transitions(make_project, path, expected):
    project = make_project()
    for status in path:
        projects.change_status(project, status)
    assert project.status == expected


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (DRAFT, DRAFT),
        (ACTIVE, DRAFT),
        (ACTIVE, ACTIVE),
        (CLOSED, ACTIVE),
        (CLOSED, DRAFT),
        (DRAFT, "archived"),
    ],
)
def test_refused_transitions(make_project, start, target):
    project = make_project(status=start)
    with pytest.raises(InvalidTransition):
        projects.change_status(project, target)
    assert project.status == start


def test_status_change_is_audited(make_project):
    project = make_project(status=ACTIVE)
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "project.status").order_by(AuditEntry.seq)
    ).all()[-1]
    assert entry.project_id == project.id
    assert '"to":"active"' in entry.data


def test_update_changes_fields_of_an_open_project(make_project):
    project = make_project(status=ACTIVE)
    projects.update(project, {"location": "Saptari", "description": "Cash for flood season"})
    assert project.location == "Saptari"


def test_closed_project_refuses_update(make_project):
    project = make_project(status=CLOSED, location="Banke")
    with pytest.raises(ProjectClosed):
        projects.update(project, {"location": "Bardiya"})
    assert project.location == "Banke"


def test_closed_project_refuses_member_changes(make_project, make_user):
    project = make_project(status=CLOSED)
    newcomer = make_user(role="field agent")
    with pytest.raises(ProjectClosed):
        projects.set_members(project, {newcomer.id})
    assert newcomer.id not in {m.user_id for m in project.members}


def test_closed_project_refuses_beneficiaries(make_project, make_beneficiary):
    project = make_project(status=CLOSED)
    with pytest.raises(ProjectClosed):
        make_beneficiary(project=project, phone="9841000001")
    person = make_beneficiary()
    with pytest.raises(ProjectClosed):
        beneficiaries.add_to_project(person, project)
    assert beneficiaries.project_ids_of(person) == []


def test_closed_project_refuses_new_groups(make_project):
    project = make_project(status=CLOSED)
    with pytest.raises(ProjectClosed):
        groups.create(project, "Round 1", "First distribution")


def test_non_member_field_agent_cannot_see_a_project(make_project, make_user):
    project = make_project()
    agent = make_user(role="field agent")
    assert projects.visible_project_ids(agent) == set()
    assert project not in db.session.scalars(projects.visible_projects(agent)).all()
    with pytest.raises(NotFound):
        projects.get_visible(agent, project.id)


def test_member_sees_only_their_projects_and_admin_sees_all(make_project, make_user):
    agent = make_user(role="field agent")
    mine = make_project(members=[agent])
    other = make_project()
    assert projects.visible_project_ids(agent) == {mine.id}
    assert projects.get_visible(agent, mine.id) is mine
    with pytest.raises(NotFound):
        projects.get_visible(agent, other.id)

    admin = make_user(role="admin")
    assert projects.visible_project_ids(admin) is None  # project.all: no restriction
    assert set(db.session.scalars(projects.visible_projects(admin))) >= {mine, other}


def test_removing_a_member_hides_the_project(make_project, make_user):
    agent = make_user(role="field agent")
    project = make_project(members=[agent])
    creator_id = next(m.user_id for m in project.members if m.user_id != agent.id)
    projects.set_members(project, {creator_id})
    with pytest.raises(NotFound):
        projects.get_visible(agent, project.id)


def test_missing_and_hidden_projects_give_the_same_answer(make_project, make_user):
    agent = make_user(role="field agent")
    hidden = make_project()
    with pytest.raises(NotFound) as missing:
        projects.get_visible(agent, 10_000)
    with pytest.raises(NotFound) as not_visible:
        projects.get_visible(agent, hidden.id)
    assert str(missing.value) == str(not_visible.value)


def test_a_taken_project_name_is_a_field_error(client, login, make_user, make_project):
    admin = make_user("admin")
    make_project(name="Winter relief", creator=admin)
    other = make_project(name="Summer relief", creator=admin)
    login(client, admin)
    created = client.post("/projects/new", data={"name": "Winter relief", "type": "cva"})
    assert created.status_code == 200
    assert "A project named “Winter relief” exists already" in created.get_data(as_text=True)
    renamed = client.post(
        f"/projects/{other.id}/edit",
        data={"name": "Winter relief", "type": "cva", "currency": "NPR"},
    )
    assert renamed.status_code == 200
    assert "exists already; choose another name" in renamed.get_data(as_text=True)

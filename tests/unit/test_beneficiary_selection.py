"""The beneficiary list's project and group columns, its selection (add to or remove from a
group or project, new cards) with each person's outcome, and the link from a refused
duplicate to the person it duplicates."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, select

from portal.beneficiaries import groups
from portal.beneficiaries import services as beneficiaries
from portal.beneficiaries.models import GroupMember, ProjectBeneficiary
from portal.cards.models import BeneficiaryCard
from portal.extensions import db


@pytest.fixture
def world(make_user, make_project, make_beneficiary):
    admin = make_user()
    relief = make_project(name="Relief", creator=admin, status="active")
    winter = make_project(name="Winter", creator=admin, status="active")
    cohort = groups.create(relief, "Cohort 1", "first distribution")
    people = [make_beneficiary(project=relief, name=f"Gita {n}") for n in "ABCD"]
    groups.add_members(cohort, people[:2])
    db.session.commit()
    return {"admin": admin, "relief": relief, "winter": winter, "cohort": cohort, "people": people}


def _post(client, **data):
    return client.post("/beneficiaries/selection", data=data)


def _members(group) -> set[int]:
    query = select(GroupMember.beneficiary_id).where(GroupMember.group_id == group.id)
    return set(db.session.scalars(query))


def _in_project(project) -> set[int]:
    query = select(ProjectBeneficiary.beneficiary_id).where(
        ProjectBeneficiary.project_id == project.id
    )
    return set(db.session.scalars(query))


def test_the_list_shows_projects_and_groups_in_a_fixed_number_of_queries(
    app, client, login, world, make_beneficiary
):
    login(client, world["admin"])

    def queries_for_list() -> tuple[int, str]:
        seen = []
        listener = lambda *a, **k: seen.append(1)  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            body = client.get("/beneficiaries/").get_data(as_text=True)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        return len(seen), body

    few, body = queries_for_list()
    assert "Cohort 1" in body and "Relief" in body
    for n in range(12):
        person = make_beneficiary(project=world["winter"], name=f"Sita {n}")
        beneficiaries.add_to_project(person, world["relief"])
    db.session.commit()
    many, body = queries_for_list()
    assert many == few  # no query per row
    assert body.count(">Winter</a>") == 12


def test_adding_a_selection_to_a_group_says_what_happened_to_each(client, login, world):
    people, cohort = world["people"], world["cohort"]
    login(client, world["admin"])
    ids = [str(p.id) for p in people[1:]] + ["999999"]
    page = _post(client, action="add", target=f"g-{cohort.id}", ids=ids, next="/beneficiaries/")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert _members(cohort) == {p.id for p in people}
    assert text.count('data-outcome="done"') == 3
    assert "Already in it." in text and text.count("Added.") == 2
    assert 'data-outcome="refused"' in text and "Not found, or not yours." in text


def test_adding_to_a_project_and_removing_after_a_confirmation(client, login, world):
    people, winter = world["people"], world["winter"]
    login(client, world["admin"])
    ids = [str(p.id) for p in people]
    _post(client, action="add", target=f"p-{winter.id}", ids=ids)
    assert {p.id for p in people} <= _in_project(winter)

    asked = _post(client, action="remove", target=f"p-{winter.id}", ids=ids[:2])
    text = asked.get_data(as_text=True)
    assert "Remove 2 people from project Winter?" in text
    assert {p.id for p in people} <= _in_project(winter)  # nothing removed yet
    done = _post(client, action="remove", target=f"p-{winter.id}", ids=ids[:2], confirmed="yes")
    assert done.get_data(as_text=True).count("Removed.") == 2
    assert _in_project(winter) & {p.id for p in people} == {p.id for p in people[2:]}


def test_a_closed_project_refuses_each_person_and_changes_nothing(
    client, login, world, make_project
):
    from portal.projects import services as projects

    login(client, world["admin"])
    closed = make_project(name="Old", creator=world["admin"], status="closed")
    db.session.commit()
    ids = [str(p.id) for p in world["people"]]
    # A closed project is not offered; sent anyway, each person is refused with the reason.
    page = _post(client, action="add", target=f"p-{closed.id}", ids=ids)
    text = page.get_data(as_text=True)
    assert text.count('data-outcome="refused"') == 4
    assert "closed" in text.lower()
    assert _in_project(closed) == set()
    assert projects.get_visible(world["admin"], closed.id).is_closed


def test_new_cards_for_a_selection_and_an_inactive_person_refused(client, login, world):
    people = world["people"]
    beneficiaries.update(
        people[3], {"name": "Gita D", "phone": people[3].pii.phone, "status": "inactive"}
    )
    db.session.commit()
    login(client, world["admin"])
    page = _post(client, action="cards", ids=[str(p.id) for p in people])
    text = page.get_data(as_text=True)
    assert text.count("Download to print") == 3
    assert "inactive" in text
    cards = db.session.scalars(select(BeneficiaryCard.beneficiary_id)).all()
    assert sorted(cards) == sorted(p.id for p in people[:3])


def test_roles_without_the_permission_cannot_act(client, login, world, make_user):
    viewer = make_user(role="viewer")
    from portal.projects import services as projects

    projects.set_members(world["relief"], {world["admin"].id, viewer.id})
    db.session.commit()
    login(client, viewer)
    listing = client.get("/beneficiaries/").get_data(as_text=True)
    assert 'name="ids"' not in listing
    response = _post(
        client, action="add", target=f"g-{world['cohort'].id}", ids=[str(world["people"][3].id)]
    )
    assert response.status_code in (302, 403, 404)
    assert world["people"][3].id not in _members(world["cohort"])


def test_a_selection_without_a_csrf_token_does_nothing(app, client, login, world):
    login(client, world["admin"])
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = _post(
            client, action="add", target=f"p-{world['winter'].id}", ids=[str(world["people"][0].id)]
        )
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code in (302, 400)
    assert _in_project(world["winter"]) == set()


def test_bad_choices_go_back_to_the_list_with_a_message(client, login, world):
    login(client, world["admin"])
    for data in (
        {"action": "add", "target": f"g-{world['cohort'].id}"},  # nobody chosen
        {"action": "add", "target": "x-1", "ids": [str(world["people"][0].id)]},
        {"action": "explode", "ids": [str(world["people"][0].id)]},
    ):
        response = _post(client, next="/beneficiaries/?q=gita", **data)
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/beneficiaries/?q=gita")
    # And a "next" elsewhere is not followed.
    response = _post(client, action="add", next="https://evil.example/")
    assert response.headers["Location"].endswith("/beneficiaries/")


def test_a_refused_duplicate_links_to_the_person_when_visible(
    client, login, world, make_user, make_project, make_beneficiary
):
    login(client, world["admin"])
    person = world["people"][0]
    form = {"name": "Someone Else", "phone": person.pii.phone, "project_id": world["relief"].id}
    form.update(gender="", language="en", status="active", consent="yes")
    page = client.post("/beneficiaries/new", data=form).get_data(as_text=True)
    assert "already enrolled" in page
    assert re.search(rf'href="/beneficiaries/{person.id}">open {person.ref}</a>', page)

    # A field agent who does not see that person's project is told it is taken, no more.
    agent = make_user(role="field agent")
    elsewhere = make_project(name="Elsewhere", members=[agent], status="active")
    db.session.commit()
    client.get("/logout")
    client.post("/logout")
    login(client, agent)
    form["project_id"] = elsewhere.id
    page = client.post("/beneficiaries/new", data=form).get_data(as_text=True)
    assert "already enrolled" in page
    assert person.ref not in page and "data-duplicate" not in page

"""Beneficiaries: normalisation, de-duplication, exact search, scoping, groups, and encryption."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import MetaData, select

from portal.accounts.permissions import SEEDED_ROLES
from portal.beneficiaries import groups, normalize
from portal.beneficiaries import services as beneficiaries
from portal.beneficiaries.models import BeneficiaryPII
from portal.errors import NotFound
from portal.extensions import db


def _search(user, q: str = "", **params):
    query = beneficiaries.search(user, beneficiaries.ListQuery(q=q, **params))
    return db.session.scalars(query).all()


@pytest.mark.parametrize(
    "raw",
    ["9841234567", "984-1234567", "+977 984 123 4567", "00977 9841234567", " +9779841234567 "],
)
def test_phone_is_stored_in_e164(make_beneficiary, raw):
    person = make_beneficiary(phone=raw)
    assert person.pii.phone == "+9779841234567"


@pytest.mark.parametrize("raw", ["12", "not a phone", "", "0712345678"])
def test_invalid_phone_is_rejected_naming_the_field(make_beneficiary, raw):
    with pytest.raises(normalize.InvalidValue) as exc:
        make_beneficiary(phone=raw or " ")
    assert exc.value.field == "phone"


def test_missing_name_is_rejected_naming_the_field(app):
    with pytest.raises(normalize.InvalidValue) as exc:
        beneficiaries.create({"name": "  ", "phone": "9841234567"})
    assert exc.value.field == "name"


@pytest.mark.parametrize("raw", ["ab", "12#34!", "x" * 40])
def test_invalid_national_id_is_rejected_naming_the_field(make_beneficiary, raw):
    with pytest.raises(normalize.InvalidValue) as exc:
        make_beneficiary(national_id=raw)
    assert exc.value.field == "national_id"


def test_date_of_birth_in_the_future_is_rejected(make_beneficiary):
    with pytest.raises(normalize.InvalidValue) as exc:
        make_beneficiary(date_of_birth=date(date.today().year + 1, 1, 1))
    assert exc.value.field == "date_of_birth"


def test_national_id_is_normalised(make_beneficiary):
    person = make_beneficiary(national_id=" 12-345/678.ab ")
    assert person.pii.national_id == "12345678AB"


def test_duplicate_phone_in_another_format_is_rejected(make_beneficiary):
    make_beneficiary(phone="9841234567")
    with pytest.raises(normalize.InvalidValue) as exc:
        make_beneficiary(phone="+977-984-123-4567")
    assert exc.value.field == "phone"


def test_duplicate_national_id_in_another_format_is_rejected(make_beneficiary):
    make_beneficiary(national_id="12-345-678")
    with pytest.raises(normalize.InvalidValue) as exc:
        make_beneficiary(national_id="12345678")
    assert exc.value.field == "national_id"


def test_update_may_keep_its_own_phone_but_not_take_another(make_beneficiary):
    first = make_beneficiary(phone="9841000001")
    second = make_beneficiary(phone="9841000002")
    beneficiaries.update(second, {"name": "Renamed", "phone": "9841000002"})
    assert second.pii.name == "Renamed"
    with pytest.raises(normalize.InvalidValue) as exc:
        beneficiaries.update(second, {"name": "Renamed", "phone": "984-1000001"})
    assert exc.value.field == "phone"
    assert first.pii.phone == "+9779841000001"


def test_search_by_phone_in_a_different_format_finds_the_person(make_user, make_beneficiary):
    admin = make_user()
    person = make_beneficiary(phone="9841234567")
    make_beneficiary(phone="9841234568")
    assert _search(admin, "+977 984-123-4567") == [person]
    assert _search(admin, "00977 984 1234567") == [person]


def test_search_by_national_id_and_by_ref(make_user, make_beneficiary):
    admin = make_user()
    person = make_beneficiary(national_id="NP-1234-5678")
    make_beneficiary(national_id="NP-1234-5679")
    assert _search(admin, "np 1234 5678") == [person]
    assert _search(admin, person.ref.lower()) == [person]
    assert _search(admin, "NP-0000-0000") == []


def test_search_does_not_match_on_partial_numbers(make_user, make_beneficiary):
    admin = make_user()
    person = make_beneficiary(name="Sita Tamang", phone="9841234567")
    assert _search(admin, "984123") == []
    assert _search(admin, "Sita") == [person]  # words of the name are found (name_search)


def test_field_agent_sees_only_beneficiaries_of_their_projects(
    make_user, make_project, make_beneficiary
):
    agent = make_user(role="field agent")
    mine, other = make_project(members=[agent]), make_project()
    visible = make_beneficiary(project=mine, phone="9841000001")
    hidden = make_beneficiary(project=other, phone="9841000002", national_id="HID-0001")
    unassigned = make_beneficiary(phone="9841000003")

    assert _search(agent) == [visible]
    # Exact search does not reveal a person outside the user's projects either.
    assert _search(agent, "9841000002") == []
    assert _search(agent, "HID-0001") == []
    with pytest.raises(NotFound):
        beneficiaries.get_visible(agent, hidden.id)
    with pytest.raises(NotFound):
        beneficiaries.get_visible(agent, unassigned.id)

    admin = make_user(role="admin")
    assert set(_search(admin)) == {visible, hidden, unassigned}


def test_personal_data_is_masked_for_roles_without_pii_permission(
    make_user, make_project, make_beneficiary
):
    """A viewer may see the record (scoped) but the pages must mask its personal data."""
    viewer = make_user(role="viewer")
    project = make_project(members=[viewer])
    person = make_beneficiary(project=project)
    assert beneficiaries.get_visible(viewer, person.id) is person
    assert viewer.can("beneficiary.read")
    assert not viewer.can("beneficiary.pii.read")
    pii_roles = {
        name for name, (_, perms) in SEEDED_ROLES.items() if "beneficiary.pii.read" in perms
    }
    assert pii_roles == {"admin", "programme manager", "field agent"}


def test_adding_to_a_group_puts_the_person_into_the_groups_project(
    make_user, make_project, make_beneficiary
):
    project = make_project(status="active")
    group = groups.create(project, "Round 1", "First distribution")
    person = make_beneficiary()
    assert beneficiaries.project_ids_of(person) == []

    assert groups.add_members(group, [person]) == 1
    assert beneficiaries.project_ids_of(person) == [project.id]
    assert groups.groups_of(person) == [group]
    assert groups.add_members(group, [person]) == 0  # already in: nothing new


def test_removing_from_a_project_removes_from_that_projects_groups_only(
    make_project, make_beneficiary
):
    first, second = make_project(), make_project()
    group_1 = groups.create(first, "Cohort A", "Winter kits")
    group_2 = groups.create(second, "Cohort B", "School fees")
    person = make_beneficiary()
    groups.add_members(group_1, [person])
    groups.add_members(group_2, [person])

    assert beneficiaries.remove_from_project(person, first) is True
    assert beneficiaries.project_ids_of(person) == [second.id]
    assert groups.groups_of(person) == [group_2]
    assert groups.member_counts([group_1.id, group_2.id]) == {group_2.id: 1}


def test_group_names_are_unique_within_a_project(make_project):
    project = make_project()
    groups.create(project, "Round 1", "x")
    with pytest.raises(Exception, match="already has a group"):
        groups.create(project, " Round 1 ", "y")
    groups.create(make_project(), "Round 1", "same name, other project")


def test_no_table_holds_personal_data_in_clear(app, make_user, make_project, make_vendor):
    """Dump every column of every table and look for the personal values in any form."""
    admin = make_user()
    project = make_project(creator=admin)
    name = "Zyxwanda Plaintextova"
    raw_phone, e164, national = "984-7654321", "+9779847654321", "9847654321"
    nid_raw, nid = "QZ-998877-XK", "QZ998877XK"
    person = beneficiaries.create(
        {
            "name": name,
            "phone": raw_phone,
            "national_id": nid_raw,
            "location": "Gokarneshwor ward 7",
            "date_of_birth": date(1987, 6, 5),
        },
        project=project,
    )
    beneficiaries.update(
        person,
        {"name": name, "phone": raw_phone, "national_id": nid_raw, "location": "Kirtipur ward 3"},
    )
    make_vendor(project=project, contact_name="Qoravex Vendorowner", phone="9807654321")
    db.session.commit()

    needles = [
        name,
        "Zyxwanda",
        "Plaintextova",
        raw_phone,
        e164,
        national,
        nid_raw,
        nid,
        "Gokarneshwor",
        "Kirtipur",
        "1987-06-05",
        "Qoravex",
        "9807654321",
    ]
    metadata = MetaData()
    metadata.reflect(bind=db.engine)
    assert "beneficiary_pii" in metadata.tables and "audit_entries" in metadata.tables
    leaks = []
    rows_seen = 0
    for table in metadata.sorted_tables:
        for row in db.session.execute(select(table)):
            rows_seen += 1
            for column, value in row._mapping.items():
                text = str(value)
                leaks += [
                    f"{table.name}.{column}: {n}" for n in needles if n.lower() in text.lower()
                ]
    assert rows_seen > 10
    assert leaks == []

    # And the values are really there, encrypted: the ORM reads them back.
    db.session.expire_all()
    pii = db.session.get(BeneficiaryPII, person.id)
    assert (pii.name, pii.phone, pii.national_id) == (name, e164, nid)


# Pages of the list: numbered near the top, then by a row's sort values ----------------------


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(beneficiaries, "PER_PAGE", 4)
    monkeypatch.setattr(beneficiaries, "NUMBERED_PAGES", 2)


def _walk(user, params, **start) -> list[beneficiaries.ListPage]:
    """Every page from ``start`` on, following the "next" arguments as the links do."""
    pages = [beneficiaries.list_page(user, params, **start)]
    while pages[-1].next is not None:
        pages.append(beneficiaries.list_page(user, params, **pages[-1].next))
        assert len(pages) < 100
    return pages


@pytest.mark.parametrize("sort", ["newest", "oldest", "ref", "status"])
def test_pages_forward_and_back_give_every_row_once_in_order(
    make_user, make_beneficiary, small_pages, sort
):
    admin = make_user()
    for k in range(19):
        make_beneficiary(status="inactive" if k % 3 == 0 else "active")
    params = beneficiaries.ListQuery(sort=sort)
    expected = [p.id for p in _search(admin, sort=sort)]
    pages = _walk(admin, params)
    assert [p.number for p in pages[:2]] == [1, 2] and all(p.cursor for p in pages[2:])
    assert [person.id for page in pages for person in page.items] == expected
    assert pages[-1].next is None and len(pages) == 5

    # Back from the last page by the "previous" arguments: the same pages, the other way.
    back = [pages[-1]]
    while back[-1].previous is not None and back[-1].cursor:
        back.append(beneficiaries.list_page(admin, params, **back[-1].previous))
    assert [[p.id for p in page.items] for page in back] == [
        [p.id for p in page.items] for page in reversed(pages[-len(back) :])
    ]


def test_pages_keep_to_what_the_user_may_see_and_the_filters(
    make_user, make_project, make_beneficiary, small_pages
):
    agent = make_user(role="field agent")
    mine, other = make_project(members=[agent]), make_project()
    group = groups.create(mine, "Round 1", "first")
    seen = [make_beneficiary(project=mine) for _ in range(9)]
    for _ in range(5):
        make_beneficiary(project=other)
    groups.add_members(group, seen[::2])
    pages = _walk(agent, beneficiaries.ListQuery())
    assert [p.id for page in pages for p in page.items] == [p.id for p in reversed(seen)]
    in_group = _walk(agent, beneficiaries.ListQuery(group_id=group.id), after=str(seen[-1].id))
    assert [p.id for page in in_group for p in page.items] == [p.id for p in reversed(seen[:-1:2])]


def test_a_cursor_that_is_not_one_gives_the_first_page(make_user, make_beneficiary, small_pages):
    admin = make_user()
    people = [make_beneficiary() for _ in range(6)]
    first = beneficiaries.list_page(admin, beneficiaries.ListQuery())
    for token in ("", "abc", "12.5", "-3", "9" * 30, "active.x"):
        page = beneficiaries.list_page(admin, beneficiaries.ListQuery(), after=token)
        assert page.number == 1 and page.items == first.items
    status = beneficiaries.list_page(
        admin, beneficiaries.ListQuery(sort="status"), after=f"deleted.{people[0].id}"
    )
    assert status.number == 1


def test_totals_are_exact_up_to_a_limit_then_said_to_be_more(
    make_user, make_beneficiary, small_pages, monkeypatch
):
    admin = make_user()
    for _ in range(7):
        make_beneficiary()
    page = beneficiaries.list_page(admin, beneficiaries.ListQuery())
    assert (page.total, page.approximate, page.at_least, page.pages) == (7, False, False, 2)
    monkeypatch.setattr(beneficiaries, "EXACT_COUNT_LIMIT", 5)
    page = beneficiaries.list_page(admin, beneficiaries.ListQuery())
    assert (page.total, page.at_least) == (5, True)  # no estimate on SQLite: "more than 5"


def test_list_page_links_keep_filters_and_are_shareable(
    app, client, make_user, login, make_beneficiary, small_pages
):
    admin = make_user()
    people = [make_beneficiary(status="active") for _ in range(13)]
    login(client, admin)
    first = client.get("/beneficiaries/?status=active&sort=oldest").get_data(as_text=True)
    assert "Page 1 of 4 · 13 in all" in first
    assert 'href="/beneficiaries/?status=active&amp;sort=oldest&amp;page=2" rel="next"' in first
    second = client.get("/beneficiaries/?status=active&sort=oldest&page=2").get_data(as_text=True)
    after = people[7].id  # the last row of page 2, oldest first
    assert f'href="/beneficiaries/?status=active&amp;sort=oldest&amp;after={after}"' in second
    third = client.get(f"/beneficiaries/?status=active&sort=oldest&after={after}")
    body = third.get_data(as_text=True)
    assert third.status_code == 200 and people[8].ref in body and people[7].ref not in body
    assert f"before={people[8].id}" in body and "First page" in body
    assert "13 in all" in body and "Page " not in body
    empty = client.get(f"/beneficiaries/?sort=oldest&after={people[-1].id}").get_data(as_text=True)
    assert "No more beneficiaries this way" in empty


def test_numbered_pages_by_status_are_read_a_status_at_a_time_in_order(
    make_user, make_beneficiary, monkeypatch
):
    monkeypatch.setattr(beneficiaries, "PER_PAGE", 3)
    monkeypatch.setattr(beneficiaries, "NUMBERED_PAGES", 20)
    admin = make_user()
    for k in range(17):
        make_beneficiary(status="inactive" if k % 4 == 0 else "active")
    for status in ("", "active", "inactive"):
        params = beneficiaries.ListQuery(sort="status", status=status)
        expected = [p.id for p in _search(admin, sort="status", status=status)]
        for number in range(1, 8):
            page = beneficiaries.list_page(admin, params, page=number)
            assert [p.id for p in page.items] == expected[(number - 1) * 3 : number * 3]

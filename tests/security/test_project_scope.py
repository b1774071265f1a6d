"""A user scoped to some projects sees nothing of the others, on any page or export.

Generated projects each hold named rows (groups, people, vendors, Kobo forms, file sources); a
user who is a member of some of them walks every GET route, with every id the data has, and no
name of another project's row may appear. The audit log is checked by its project column.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portal import realtime
from portal.accounts.models import Role, User
from portal.accounts.permissions import ALL_PROJECTS, PERMISSIONS
from portal.accounts.services import save_role
from portal.audit.models import AuditEntry
from portal.beneficiaries import groups
from portal.beneficiaries import services as beneficiaries
from portal.comms import services as comms
from portal.extensions import db, socketio
from portal.imports.models import KOBO, ImportSource
from portal.projects import services as projects
from portal.projects.models import Project
from portal.vendors import services as vendors

EXAMPLES = 6 if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else 3
# Words no page prints by itself, so a hit can only be a generated row.
MARKER = st.text(alphabet="bcdfghjklmnpqrstvwxz", min_size=10, max_size=10).map(lambda s: "zq" + s)

# A small CSV a project's import is made from.
SHEET = "name,phone\nAsha,9841000001\n"


def _scoped_role():
    everything_but_all = set(PERMISSIONS) - {ALL_PROJECTS}
    return save_role(
        None, "scoped everything", "every permission, own projects", everything_but_all
    )


def _fill(project, marker: str, admin_client, make_beneficiary, make_vendor) -> None:
    """Rows of every kind that belongs to a project, each named with the project's marker."""
    group = groups.create(project, f"Group {marker}", "")
    person = make_beneficiary(project=project, name=f"Person {marker}")
    groups.add_members(group, [person])
    make_vendor(project=project, name=f"Shop {marker}")
    comms.send_sms("+9779841000001", f"Message {marker}", "test", project_id=project.id)
    db.session.add(
        ImportSource(
            kind=KOBO,
            name=f"Kobo {marker}",
            project_id=project.id,
            kobo_server_url="https://kf.kobotoolbox.org",
            kobo_asset_uid="aBcDeF123456",
        )
    )
    db.session.commit()
    response = admin_client.post(
        "/imports/new",
        data={
            "file": (io.BytesIO(SHEET.encode()), "list.csv"),
            "project_id": str(project.id),
            "group_id": "0",
            "source": f"Sheet {marker}",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def _get_routes(app):
    """GET routes and their arguments, when these are ints (the rest serve static files)."""
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        needed = sorted(set(rule.arguments) - set(rule.defaults or {}))
        converters = [type(rule._converters.get(a)).__name__ for a in needed]
        if all(c == "IntegerConverter" for c in converters):
            yield rule, needed


def _urls(app, ids: list[int], project_ids: list[int]):
    for rule, needed in _get_routes(app):
        if not needed:
            path = rule.build(dict(rule.defaults or {}), append_unknown=False)[1]
            yield path
            for pid in project_ids:  # every list filters by project: ask for the others'
                yield f"{path}?project={pid}&project_id={pid}"
        elif len(needed) == 1:
            for value in ids:
                yield rule.build({**(rule.defaults or {}), needed[0]: value}, append_unknown=False)[
                    1
                ]


def test_a_scoped_user_sees_no_other_projects_rows(
    app, make_user, make_project, make_beneficiary, make_vendor, login
):
    admin = make_user("admin")
    admin_client = app.test_client()
    login(admin_client, admin)
    role = _scoped_role()
    db.session.commit()
    # Socket handlers end the shared test session: keep ids, re-read the rows in each example.
    admin_id, role_id = admin.id, role.id
    made: list = []
    serial = itertools.count()

    @settings(
        derandomize=True,
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate],  # each example is a whole walk
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        markers=st.lists(MARKER, min_size=2, max_size=4, unique=True),
        data=st.data(),
    )
    def walk(markers, data):
        new = []
        for generated in markers:
            marker = f"{generated}x{next(serial)}"  # examples add up: names must stay unique
            creator = db.session.get(User, admin_id)
            project = make_project(name=f"Project {marker}", creator=creator)
            _fill(project, marker, admin_client, make_beneficiary, make_vendor)
            new.append((marker, project.id))
        # A person and a vendor in every project of the example: their pages are open to each
        # project's members, and must not tell one project's members about the others.
        shared_person = make_beneficiary(name=f"Person shared {next(serial)}")
        shared_vendor = make_vendor(name=f"Shop shared {next(serial)}")
        for marker, pid in new:
            project = db.session.get(Project, pid)
            beneficiaries.add_to_project(shared_person, project)
            vendors.assign(shared_vendor, project)
            group = groups.create(project, f"Shared group {marker}", "")
            groups.add_members(group, [shared_person])
        db.session.commit()
        made.extend(new)
        # Positions, not ids: the ids grow from example to example, the draws must not change.
        picked = data.draw(st.sets(st.integers(0, len(new) - 1), min_size=1, max_size=len(new) - 1))
        member_of = {new[i][1] for i in picked}
        user = make_user("viewer")
        user.role = db.session.get(Role, role_id)
        for pid in member_of:
            project = db.session.get(Project, pid)
            projects.set_members(project, {m.user_id for m in project.members} | {user.id})
        db.session.commit()
        client = app.test_client()
        assert login(client, user).status_code == 302
        hidden = [marker for marker, pid in made if pid not in member_of]
        shown = [marker for marker, pid in made if pid in member_of]
        all_ids = sorted({pid for _, pid in made})
        top = max(all_ids) + 3  # ids of every table run about as high as the project ids
        leaks = []
        seen_own = False
        for url in _urls(app, list(range(1, top)), all_ids):
            response = client.get(url)
            body = response.get_data(as_text=True)
            leaks.extend(f"{url} shows {m}" for m in hidden if m in body)
            seen_own = seen_own or any(m in body for m in shown)
        # Every socket topic, with every id, answers nothing of the other projects either.
        sio = socketio.test_client(app, flask_test_client=client)
        for topic in sorted(realtime.TOPICS):
            for value in range(1, top):
                ack = sio.emit(
                    "subscribe", {"topic": topic, "id": value, "project_id": value}, callback=True
                )
                text = json.dumps(ack)
                leaks.extend(f"topic {topic} #{value} shows {m}" for m in hidden if m in text)
                leaks.extend(
                    f"topic {topic} #{value} joined project {pid}"
                    for pid in all_ids
                    if pid not in member_of and ack.get("ok") and f'"project_id": {pid},' in text
                )
        sio.disconnect()
        assert not leaks, "\n".join(leaks[:20])
        assert seen_own, "the walk never showed the user's own rows: it proves nothing"
        client.post("/logout")

    walk()


def test_the_audit_log_shows_a_scoped_reader_only_their_projects(
    app, client, make_user, make_project, login
):
    admin = make_user("admin")
    mine, theirs = make_project(creator=admin), make_project(creator=admin)
    reader = make_user("finance")
    projects.set_members(mine, {admin.id, reader.id})
    db.session.commit()
    everywhere = set(db.session.scalars(select(AuditEntry.project_id)))
    assert {mine.id, theirs.id, None} <= everywhere  # the log holds all three kinds
    login(client, reader)

    page = client.get("/audit/?per_page=500").get_data(as_text=True)
    # Named for a reader who sees the project (``portal/audit/names.py``).
    assert f"Project “{mine.name}” created" in page
    assert f"Project “{theirs.name}” created" not in page
    assert f"Project {theirs.id} created" not in page
    other = client.get(f"/audit/?project={theirs.id}").get_data(as_text=True)
    assert f"Project “{theirs.name}” created" not in other
    assert f"Project {theirs.id} created" not in other

    rows = list(csv.DictReader(io.StringIO(client.get("/audit/export.csv").get_data(as_text=True))))
    assert rows, "the reader's own project has entries"
    assert {row["project"] for row in rows} == {str(mine.id)}


def test_another_projects_source_cannot_be_borrowed_by_name(
    app, client, make_user, make_project, login
):
    """Typing the name of a source the user cannot see neither reuses nor rewrites its
    remembered mapping: the name is refused, the file kept for another try."""
    admin = make_user("admin")
    theirs = make_project(creator=admin)
    user = make_user("field agent")
    mine = make_project(creator=admin, members=[user])
    kobo_form = ImportSource(
        kind=KOBO, name="Ward survey", project_id=theirs.id, mapping_json='{"Name": "name"}'
    )
    db.session.add(kobo_form)
    db.session.commit()
    login(client, user)

    page = client.get("/imports/new").get_data(as_text=True)
    assert "Ward survey" not in page
    response = client.post(
        "/imports/new",
        data={
            "file": (io.BytesIO(SHEET.encode()), "list.csv"),
            "project_id": str(mine.id),
            "group_id": "0",
            "source": "Ward survey",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert "This name is taken; choose another source name." in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ImportSource, kobo_form.id).mapping_json == '{"Name": "name"}'

    response = client.post(
        "/imports/new",
        data={
            "file": (io.BytesIO(SHEET.encode()), "list.csv"),
            "project_id": str(mine.id),
            "group_id": "0",
            "source": "Ward survey (mine)",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    made = db.session.scalar(select(ImportSource).where(ImportSource.name == "Ward survey (mine)"))
    assert made.project_id == mine.id
    assert "Ward survey (mine)" in client.get("/imports/new").get_data(as_text=True)

"""The audit log names people, vendors, projects and groups for readers allowed to see them, in
a fixed number of queries however long the page."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from portal.accounts.services import save_role
from portal.audit import names
from portal.audit import services as audit
from portal.audit.models import AuditEntry
from portal.beneficiaries import groups
from portal.extensions import db

# Every permission that unmasks a name in the log.
FULL_READER = frozenset(
    {
        "audit.read",
        "user.manage",
        "vendor.read",
        "project.all",
        "beneficiary.read",
        "beneficiary.pii.read",
    }
)


class _Counter:
    def __init__(self):
        self.selects = 0

    def __call__(self, conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            self.selects += 1


@pytest.fixture
def count_selects(app):
    counter = _Counter()
    engine = db.engine
    event.listen(engine, "before_cursor_execute", counter)
    yield counter
    event.remove(engine, "before_cursor_execute", counter)


def _entries(n_vendors, make_user, make_project, make_vendor, make_beneficiary):
    staff = make_user("admin", name="Asha Rai", email="asha@example.org")
    project = make_project(name="Winter cash", creator=staff)
    person = make_beneficiary(project=project, name="Gita Magar")
    group = groups.create(project, "Ward 4", "")
    vendors = [make_vendor(project=project, name=f"Shop {n}") for n in range(n_vendors)]
    db.session.flush()
    for vendor in vendors:
        audit.record(
            "test.vendor_assigned",
            f"Vendor {vendor.id} assigned to project {project.id}",
            actor_id=staff.id,
            actor_label=f"user:{staff.id}",
            project_id=project.id,
        )
    audit.record(
        "test.card",
        f"Card 1 of beneficiary {person.ref} revoked; {len(vendors)} beneficiaries added "
        f"to group {group.id} by user {staff.id} (address 0x{'ab' * 20})",
        actor_label="system",
        project_id=project.id,
    )
    audit.record("test.vendor_signin", "Vendor signed in", actor_label=f"vendor:{vendors[0].id}")
    db.session.commit()
    return staff, project, person, group, vendors


def _reader(make_user, permissions, name):
    save_role(None, name, "", set(permissions))
    db.session.flush()
    return make_user(name)


def _page():
    return db.session.scalars(db.select(AuditEntry).order_by(AuditEntry.seq)).all()


def _one(entries, shown, action, contains=""):
    found = [e for e in entries if e.action == action and contains in e.summary]
    assert len(found) == 1, [(e.action, e.summary) for e in entries]
    return shown[found[0].id]


def test_an_auditor_with_every_permission_reads_names(
    app, make_user, make_project, make_vendor, make_beneficiary
):
    _staff, _project, person, _group, _vendors = _entries(
        2, make_user, make_project, make_vendor, make_beneficiary
    )
    reader = _reader(make_user, FULL_READER | {"chain.details.read"}, "auditor")
    entries = _page()
    shown = names.resolve(entries, reader)
    first = _one(entries, shown, "test.vendor_assigned", f"Vendor {_vendors[1].id} ")
    assert first.who == "Asha Rai (asha@example.org)"
    assert first.summary == "Vendor “Shop 1” assigned to project “Winter cash”"
    card = _one(entries, shown, "test.card")
    assert card.who == "The portal (automatic)"
    assert f"beneficiary Gita Magar ({person.ref})" in card.summary
    assert "group “Ward 4”" in card.summary and "user “Asha Rai (asha@example.org)”" in card.summary
    assert "0x" + "ab" * 20 in card.summary  # the reader sees on-chain details
    assert _one(entries, shown, "test.vendor_signin").who == "Vendor “Shop 0”"


def test_a_reader_without_the_permissions_sees_masks_and_ids(
    app, make_user, make_project, make_vendor, make_beneficiary
):
    _staff, project, person, group, vendors = _entries(
        1, make_user, make_project, make_vendor, make_beneficiary
    )
    # Reads the audit log and masked beneficiaries of one project it is not a member of.
    reader = _reader(make_user, {"audit.read", "beneficiary.read"}, "narrow")
    entries = _page()
    shown = names.resolve(entries, reader)
    vendor_entry = _one(entries, shown, "test.vendor_assigned")
    assert vendor_entry.who == "Asha Rai"  # staff names, but no email without user.manage
    assert vendor_entry.summary == f"Vendor {vendors[0].id} assigned to project {project.id}"
    card = _one(entries, shown, "test.card")
    assert f"beneficiary G••• M•••• ({person.ref})" in card.summary
    assert "Gita" not in card.summary and "Magar" not in card.summary
    assert f"group {group.id}" in card.summary  # not a member: the group's name is not theirs
    assert "0x" not in card.summary and "(address)" in card.summary
    step = names.resolve(
        [
            AuditEntry(
                id=-1,
                actor_label="system",
                summary="Chain transaction 3 (deploy.contract) confirmed",
            )
        ],
        reader,
    )[-1]
    assert step.summary == "Payment network step 3 confirmed"
    assert _one(entries, shown, "test.vendor_signin").who == f"Vendor {vendors[0].id}"


@pytest.mark.parametrize("n_vendors", [1, 40])
def test_names_cost_the_same_few_queries_for_any_page(
    app, make_user, make_project, make_vendor, make_beneficiary, count_selects, n_vendors
):
    _entries(n_vendors, make_user, make_project, make_vendor, make_beneficiary)
    reader = _reader(make_user, FULL_READER, "auditor")
    entries = _page()
    reader.can("audit.read")  # the reader's role, loaded as the request has it already
    count_selects.selects = 0
    shown = names.resolve(entries, reader)
    # Users, vendors, projects, groups, beneficiaries (with their encrypted names): one
    # query each, never one per entry.
    assert count_selects.selects <= 5, count_selects.selects
    assert len(shown) == len(entries)


def test_the_audit_page_and_the_activity_page_show_names(
    app, client, make_user, make_project, make_vendor, make_beneficiary, login
):
    staff, *_rest = _entries(1, make_user, make_project, make_vendor, make_beneficiary)
    login(client, staff)
    page = client.get("/audit/").get_data(as_text=True)
    assert "Vendor “Shop 0” assigned to project “Winter cash”" in page
    assert f">user:{staff.id}<" not in page and "Asha Rai (asha@example.org)" in page
    activity = client.get("/account/activity").get_data(as_text=True)
    assert "Vendor “Shop 0”" in activity

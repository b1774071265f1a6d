"""Vendors: registration, the status lifecycle, its domain events and its audit entries."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal import events
from portal.audit.models import AuditEntry
from portal.beneficiaries import normalize
from portal.errors import InvalidTransition, ProjectClosed
from portal.extensions import db
from portal.vendors import services as vendors
from portal.vendors.models import APPROVED, PENDING, SUSPENDED


def test_register_normalises_phone_and_starts_pending(make_vendor):
    vendor = make_vendor(phone="980-1234567")
    assert vendor.status == PENDING
    assert vendor.phone == "+9779801234567"


def test_register_refuses_duplicate_phone_and_bad_category(make_vendor):
    make_vendor(phone="9801234567")
    with pytest.raises(normalize.InvalidValue) as exc:
        make_vendor(phone="+977 980 123 4567")
    assert exc.value.field == "phone"
    with pytest.raises(normalize.InvalidValue) as exc:
        make_vendor(category="casino")
    assert exc.value.field == "category"


@pytest.mark.parametrize(
    "path",
    [
        (APPROVED,),
        (SUSPENDED,),
        (APPROVED, SUSPENDED),
        (APPROVED, SUSPENDED, APPROVED),
    ],
)
def test_allowed_transitions(make_vendor, path):
    vendor = make_vendor()
    for status in path:
        vendors.change_status(vendor, status, reason="checked")
    assert vendor.status == path[-1]
    assert vendor.status_changed_at is not None


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (PENDING, PENDING),
        (APPROVED, PENDING),
        (APPROVED, APPROVED),
        (SUSPENDED, PENDING),
        (SUSPENDED, SUSPENDED),
        (PENDING, "banned"),
    ],
)
def test_refused_transitions(make_vendor, start, target):
    vendor = make_vendor(status=start)
    with pytest.raises(InvalidTransition):
        vendors.change_status(vendor, target)
    assert vendor.status == start


def test_suspension_sends_vendor_suspended_to_listeners(make_vendor, make_project):
    project = make_project(status="active")
    vendor = make_vendor(project=project, status=APPROVED)
    received = []

    def listener(sender, **kwargs):
        received.append((sender, kwargs))

    approved = []
    with (
        events.vendor_suspended.connected_to(listener),
        events.vendor_approved.connected_to(lambda sender, **kw: approved.append(sender)),
    ):
        vendors.change_status(vendor, SUSPENDED, reason="  Overcharging reported  ")

    assert len(received) == 1
    sender, kwargs = received[0]
    assert sender is vendor
    assert kwargs["action"] == "vendor.suspended"
    assert kwargs["data"] == {"from": APPROVED, "to": SUSPENDED, "project_ids": [project.id]}
    assert approved == []
    assert vendor.status_reason == "Overcharging reported"


def test_suspension_is_audited(make_vendor):
    vendor = make_vendor(status=APPROVED)
    vendors.change_status(vendor, SUSPENDED, reason="fraud check")
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "vendor.suspended")
    ).one()
    assert (entry.target_type, entry.target_id) == ("vendors", str(vendor.id))
    assert '"to":"suspended"' in entry.data
    actions = db.session.scalars(
        select(AuditEntry.action).where(AuditEntry.target_id == str(vendor.id))
    ).all()
    assert actions[:2] == ["vendor.registered", "vendor.approved"]


def test_scoping_follows_project_assignment(make_user, make_project, make_vendor):
    agent = make_user(role="viewer")
    mine, other = make_project(members=[agent]), make_project()
    seen = make_vendor(project=mine, name="Hill Pharmacy")
    make_vendor(project=other, name="Hill Shop", phone="9807777777")
    assert db.session.scalars(vendors.visible(agent)).all() == [seen]
    assert db.session.scalars(vendors.search(agent, q="hill")).all() == [seen]
    assert db.session.scalars(vendors.search(agent, q="9807777777")).all() == []


def test_search_by_phone_in_another_format(make_user, make_vendor):
    admin = make_user()
    vendor = make_vendor(phone="9801234567")
    assert db.session.scalars(vendors.search(admin, q="+977 980-123-4567")).all() == [vendor]


def test_assignment_to_a_closed_project_is_refused(make_project, make_vendor):
    project = make_project(status="closed")
    vendor = make_vendor()
    with pytest.raises(ProjectClosed):
        vendors.assign(vendor, project)
    assert vendors.project_ids_of(vendor) == []

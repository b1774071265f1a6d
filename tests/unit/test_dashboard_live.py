"""The dashboard's commit listener: which commits send a snapshot, to which room, and how often."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, update

from portal import realtime
from portal.dashboard import live, publisher, snapshot
from portal.disbursements.models import DisbursementBatch, Entitlement
from portal.extensions import db, socketio
from portal.jobs import dispatch
from portal.jobs.models import Job
from portal.projects import services as projects
from portal.timeutil import utcnow
from tests.support import chain
from tests.unit.test_dashboard import last_code


@pytest.fixture
def emitted(monkeypatch):
    """Dashboard snapshots sent, as (room, snapshot); other live events pass through."""
    seen: list[tuple[str, dict]] = []
    real = realtime.emit

    def spy(event_name, data, rooms):
        if event_name == live.DASHBOARD_UPDATED:
            seen.extend((room, data) for room in rooms)
        return real(event_name, data, rooms)

    monkeypatch.setattr(realtime, "emit", spy)
    return seen


@pytest.fixture
def two_projects(app, worker, make_project, make_beneficiary):
    """Two deployed projects, each with one person allocated 10.00."""
    made = []
    for _ in range(2):
        project = make_project(status="active")
        person = make_beneficiary(project=project)
        db.session.commit()
        chain.deploy(worker, project)
        chain.fund(worker, project, "50.00")
        chain.allocate(worker, project, amount="10.00", beneficiary_ids=[person.id])
        made.append(project)
    return made


def held(project) -> Entitlement:
    return db.session.scalar(select(Entitlement).where(Entitlement.project_id == project.id))


def test_an_entitlement_change_sends_one_snapshot_to_its_room(two_projects, emitted):
    # One, though every test's app connected the listeners again: connect() is idempotent.
    first, _ = two_projects
    held(first).revoked = 400
    db.session.commit()
    assert [room for room, _ in emitted] == [live.room(first.id)]
    sent = emitted[0][1]
    assert sent["project_id"] == first.id
    assert sent["totals"]["revoked"] == 400 and sent["totals"]["remaining"] == 600


def test_unrelated_commits_send_nothing(two_projects, emitted, make_beneficiary):
    first, _ = two_projects
    make_beneficiary(project=first)
    db.session.commit()
    projects.update(first, {"name": "Renamed", "type": first.type})
    db.session.commit()
    held(first).address = "0x" + "1" * 40  # a column the screen does not show
    db.session.commit()
    job = db.session.scalar(select(Job).where(Job.project_id == first.id).limit(1))
    job.sent_at = utcnow()  # neither: only its status counts
    db.session.commit()
    assert emitted == []


def test_a_rolled_back_change_sends_nothing(two_projects, emitted, make_beneficiary):
    first, _ = two_projects
    held(first).revoked = 100
    db.session.flush()
    db.session.rollback()
    make_beneficiary(project=first)
    db.session.commit()
    assert emitted == []


def test_a_conditional_update_is_seen_by_its_project_column(two_projects, emitted):
    _, second = two_projects
    db.session.execute(
        update(Entitlement)
        .where(Entitlement.project_id == second.id, Entitlement.allocated >= 100)
        .values(redeemed=Entitlement.redeemed + 100)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    assert [room for room, _ in emitted] == [live.room(second.id)]
    assert emitted[0][1]["totals"]["remaining"] == 900  # reserved: no longer to spend


def test_an_update_by_row_id_is_mapped_to_its_project(two_projects, emitted):
    _, second = two_projects
    job = dispatch.enqueue("system.diagnostic", {}, project_id=second.id)
    db.session.commit()
    emitted.clear()
    db.session.execute(
        update(Job)
        .where(Job.id.in_([job.id]), Job.status == "queued")
        .values(status="cancelled")
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    assert [room for room, _ in emitted] == [live.room(second.id)]


def test_a_batch_reaches_its_project_through_its_disbursement(two_projects, emitted):
    first, _ = two_projects
    batch = db.session.scalar(select(DisbursementBatch).limit(1))
    assert batch.disbursement.project_id == first.id
    batch.status = "failed"
    db.session.commit()
    assert [room for room, _ in emitted] == [live.room(first.id)]


def test_a_batch_updated_by_its_id_alone_reaches_its_project(two_projects, emitted):
    """A conditional UPDATE naming only the batch's id (no disbursement in the WHERE) is mapped
    through the disbursement: the batch table has no project column to read."""
    first, _ = two_projects
    batch = db.session.scalar(select(DisbursementBatch).limit(1))
    db.session.commit()
    emitted.clear()
    db.session.execute(
        update(DisbursementBatch)
        .where(DisbursementBatch.id == batch.id)
        .values(status="failed")
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    assert [room for room, _ in emitted] == [live.room(first.id)]


def test_one_commit_touching_two_projects_sends_one_snapshot_each(two_projects, emitted):
    first, second = two_projects
    held(first).revoked = 1
    held(second).revoked = 2
    db.session.flush()
    held(second).revoked = 3  # flushed twice, still one snapshot
    db.session.commit()
    rooms = sorted(room for room, _ in emitted)
    assert rooms == sorted([live.room(first.id), live.room(second.id)])


def test_a_redemption_confirmed_by_code_sends_one_current_snapshot(
    app, worker, make_project, make_beneficiary, make_vendor, emitted
):
    from portal.redemptions import services as redemptions

    project = make_project(status="active")
    person = make_beneficiary(project=project)
    vendor = make_vendor(project=project, status="approved")
    db.session.commit()
    pc = chain.deploy(worker, project)
    chain.fund(worker, project, "50.00")
    chain.allocate(worker, project, amount="10.00", beneficiary_ids=[person.id])
    started = redemptions.start(vendor, project, pc, person, 250, "card")
    db.session.commit()
    emitted.clear()

    # Conditional UPDATEs only: the redemption by id, the entitlement by project and person.
    assert redemptions.confirm(vendor, started.id, last_code()).ok
    db.session.commit()
    assert [room for room, _ in emitted] == [live.room(project.id)]
    sent = emitted[-1][1]
    # Accepted, not yet on chain: pending, not redeemed.
    assert sent["totals"]["redeemed"] == 0 and sent["pending"] == {"count": 1, "amount": 250}
    assert sent["feed"][0]["label"] == "pending"

    emitted.clear()
    worker.run("contracts")  # the worker's commits: job claims, the transfer, the settlement
    assert emitted and all(room == live.room(project.id) for room, _ in emitted)
    last = emitted[-1][1]
    assert last["feed"][0]["label"] == "confirmed" and last["people"]["served"] == 1
    assert last["totals"]["redeemed"] == 250 and last["pending"] == {"count": 0, "amount": 0}
    assert last["queues"][0]["total"] == 0


def test_a_subscribed_socket_hears_the_snapshot(two_projects, client, login, make_user):
    first, second = two_projects
    first_id = first.id
    login(client, make_user("admin"))
    sio = socketio.test_client(client.application, flask_test_client=client)
    ack = sio.emit("subscribe", {"topic": "dashboard", "project_id": first_id}, callback=True)
    assert ack["ok"] is True
    sio.get_received()
    held(db.session.merge(second)).revoked = 5  # another project: not this room
    db.session.commit()
    assert [m for m in sio.get_received() if m["name"] == live.DASHBOARD_UPDATED] == []
    entitlement = db.session.scalar(select(Entitlement).where(Entitlement.project_id == first_id))
    entitlement.revoked = 7
    db.session.commit()
    heard = [m["args"][0] for m in sio.get_received() if m["name"] == live.DASHBOARD_UPDATED]
    assert len(heard) == 1 and heard[0]["totals"]["revoked"] == 7
    sio.disconnect()


def test_on_a_shared_database_the_refresh_leaves_the_committing_thread(tmp_path, monkeypatch):
    """Outside in-memory SQLite, snapshots are read by the publisher thread, bursts merged."""
    from config import TestConfig
    from portal import create_app
    from portal.beneficiaries.models import Beneficiary
    from portal.projects.models import Project

    seen: list[tuple[int, int]] = []  # (thread, redeemed)

    def emit(event_name, data, rooms):
        if event_name == live.DASHBOARD_UPDATED:
            seen.append((threading.get_ident(), 1000 - data["totals"]["remaining"]))

    monkeypatch.setattr(realtime, "emit", emit)
    monkeypatch.setattr(publisher, "IDLE_SECONDS", 0.3)
    app = create_app(
        TestConfig,
        INSTANCE_DIR=str(tmp_path / "instance"),
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'portal.db'}",
    )
    with app.app_context():
        db.create_all()
        project, person = Project(name="Shared", type="cva"), Beneficiary(ref="BSHARED1")
        db.session.add_all([project, person])
        db.session.flush()
        entitlement = Entitlement(
            project_id=project.id, beneficiary_id=person.id, address="0x0", allocated=1000
        )
        db.session.add(entitlement)
        db.session.commit()
        for redeemed in range(1, 21):  # twenty commits in a burst
            entitlement.redeemed = redeemed
            db.session.commit()
        deadline = time.monotonic() + 5
        while not (seen and seen[-1][1] == 20) and time.monotonic() < deadline:
            time.sleep(0.02)
        for thread in threading.enumerate():
            if thread.name == "dashboard-publisher":
                thread.join(timeout=5)  # ends once idle
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
    assert seen and seen[-1][1] == 20, seen
    assert all(thread != threading.get_ident() for thread, _ in seen)
    assert len(seen) < 20, f"{len(seen)} snapshots for 21 commits"


def test_a_failing_refresh_never_fails_the_commit(two_projects, emitted, monkeypatch, caplog):
    first, _ = two_projects

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(snapshot, "build", broken)
    held(first).revoked = 9
    db.session.commit()
    assert held(first).revoked == 9
    assert emitted == [] and "could not refresh the dashboard" in caplog.text


def test_a_store_that_cannot_be_reached_costs_sharing_not_figures(two_projects, caplog):
    """Redis away: a page load or subscribe builds the snapshot itself."""
    from portal.dashboard import shared

    first, _ = two_projects

    class Away:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise ConnectionError("redis is away")

            return fail

    data = shared.current(Away(), db.session.connection, first.id)
    assert data["project_id"] == first.id and data["totals"]["allocated"] == 1000
    assert "could not be read" in caplog.text

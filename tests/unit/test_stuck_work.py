"""Stuck work shown as such, counted on the home page, and fixed with actions safe at any time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from portal.beneficiaries import groups
from portal.chain.models import ChainTx
from portal.disbursements.models import Disbursement, DisbursementBatch, Entitlement
from portal.extensions import db
from portal.jobs import lifecycle
from portal.jobs.models import QUEUED, Job
from portal.timeutil import utcnow
from tests.support import chain


def _started_disbursement(
    client, login, make_user, make_project, make_beneficiary, worker, second_approver
):
    user = make_user("admin")
    project = make_project(status="active", members=[user])
    persons = [make_beneficiary(project=project) for _ in range(3)]
    group = groups.create(project, "November", "food basket")
    groups.add_members(group, persons)
    db.session.commit()
    chain.deploy(worker, project)
    chain.fund(worker, project, "100")
    login(client, user)
    client.post(
        f"/projects/{project.id}/disbursements/new",
        data={"title": "Stuck", "amount": "5", "group_id": group.id, "batch_size": 10},
    )
    d = db.session.scalar(select(Disbursement).order_by(Disbursement.id.desc()))
    assert client.post(f"/disbursements/{d.id}/start").status_code == 302
    second_approver.approve("disbursement_start")
    batch = db.session.scalar(
        select(DisbursementBatch).where(DisbursementBatch.disbursement_id == d.id)
    )
    return project, d, batch


def _kill_the_worker_of(job_id: int) -> None:
    """A worker claimed the job and died: nobody renews its lease."""
    assert lifecycle.claim(job_id, "gone-host:1") is not None
    db.session.execute(
        update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow() - timedelta(seconds=5))
    )
    db.session.commit()


def test_a_batch_whose_worker_died_is_shown_counted_and_sent_again_once(
    app, client, login, make_user, make_project, make_beneficiary, worker, second_approver
):
    project, d, batch = _started_disbursement(
        client, login, make_user, make_project, make_beneficiary, worker, second_approver
    )
    worker.broker.flush_all()  # the message went with the worker
    _kill_the_worker_of(batch.job_id)

    home = client.get("/").get_data(as_text=True)
    assert "Needs attention" in home
    assert "1</strong> job whose worker is gone" in home
    assert "1</strong> disbursement batch with no transaction on its way" in home

    jobs_page = client.get("/jobs/?status=stuck").get_data(as_text=True)
    assert f'data-job-id="{batch.job_id}"' in jobs_page and "worker gone" in jobs_page

    page = client.get(f"/disbursements/{d.id}").get_data(as_text=True)
    assert ">stuck<" in page and "Send again" in page

    restart = f"/disbursements/{d.id}/batches/{batch.id}/restart"
    assert client.post(restart).status_code == 302
    assert db.session.get(Job, batch.job_id).status == QUEUED
    # A second click (or a second member of staff): a job is alive now, nothing is queued twice.
    again = client.post(restart)
    assert again.status_code == 409
    assert (
        db.session.scalar(
            select(Job.id).where(Job.kind == "disbursement.batch").where(Job.status == QUEUED)
        )
        == batch.job_id
    )

    worker.run("contracts")
    db.session.expire_all()
    assert db.session.get(DisbursementBatch, batch.id).status == "confirmed"
    allocated = db.session.scalars(
        select(Entitlement.allocated).where(Entitlement.project_id == project.id)
    ).all()
    assert allocated == [500, 500, 500]
    assert "Nothing needs attention" in client.get("/").get_data(as_text=True)


def test_a_batch_with_a_live_job_is_not_stuck(
    app, client, login, make_user, make_project, make_beneficiary, worker, second_approver
):
    _, d, batch = _started_disbursement(
        client, login, make_user, make_project, make_beneficiary, worker, second_approver
    )
    assert lifecycle.claim(batch.job_id, "live-host:1") is not None  # running, lease fresh
    assert ">stuck<" not in client.get(f"/disbursements/{d.id}").get_data(as_text=True)
    assert client.post(f"/disbursements/{d.id}/batches/{batch.id}/restart").status_code == 409
    assert "Needs attention" not in client.get("/").get_data(as_text=True)


def test_a_transaction_not_mined_for_long_is_shown_and_counted(
    app, client, login, make_user, make_project, make_beneficiary, worker, second_approver
):
    project, _, _ = _started_disbursement(
        client, login, make_user, make_project, make_beneficiary, worker, second_approver
    )
    tx = db.session.scalar(select(ChainTx).where(ChainTx.project_id == project.id).limit(1))
    long_ago = utcnow() - timedelta(seconds=app.config["CHAIN_STUCK_SECONDS"] + 60)
    db.session.execute(
        update(ChainTx).where(ChainTx.id == tx.id).values(status="sent", sent_at=long_ago)
    )
    db.session.commit()
    page = client.get(f"/projects/{project.id}/transactions?status=stuck").get_data(as_text=True)
    assert f'data-tx-id="{tx.id}"' in page and "not mined for long" in page
    home = client.get("/").get_data(as_text=True)
    assert "1</strong> payment waiting long for the payment network" in home

    follow_up = f"/projects/{project.id}/transactions/{tx.id}/follow-up"
    confirm = ("chain.confirm", f'{{"tx_id":{tx.id}}}')
    before = db.session.scalar(
        select(func.count()).where(Job.kind == confirm[0], Job.payload_json == confirm[1])
    )
    worker.broker.flush_all()
    db.session.execute(
        update(Job)
        .where(Job.kind == confirm[0], Job.payload_json == confirm[1])
        .values(status="failed")
    )
    db.session.commit()
    assert client.post(follow_up).status_code == 302
    assert client.post(follow_up).status_code == 302  # a second click queues nothing more
    after = db.session.scalar(
        select(func.count()).where(Job.kind == confirm[0], Job.payload_json == confirm[1])
    )
    assert after == before + 1


def test_a_chain_alert_is_counted_at_home_and_resolved_once_with_an_audit_entry(
    client, login, make_user, make_project
):
    from portal.audit.models import AuditEntry
    from portal.chain import alerts

    admin = make_user("admin")
    project = make_project(status="active", members=[admin])
    alert = alerts.raise_alert(alerts.NONCE_GAP, "The node waits for nonce 7.", chain_id=31337)
    db.session.commit()
    login(client, admin)
    home = client.get("/").get_data(as_text=True)
    assert "1</strong> payment network alert" in home
    assert f"/projects/{project.id}/transactions#chain-alerts" in home
    page = client.get(f"/projects/{project.id}/transactions").get_data(as_text=True)
    assert "The node waits for nonce 7." in page and "Mark resolved" in page

    resolve = f"/projects/{project.id}/alerts/{alert.id}/resolve"
    assert client.post(resolve).status_code == 302
    assert client.post(resolve).status_code == 302  # a second click changes nothing
    assert alerts.open_counts() == {}
    resolved = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "chain.alert_resolved")
    ).all()
    assert len(resolved) == 1
    assert "payment network alert" not in client.get("/").get_data(as_text=True)


def test_only_chain_managers_may_resolve_a_chain_alert(client, login, make_user, make_project):
    from portal.chain import alerts

    viewer = make_user("viewer")
    project = make_project(status="active", members=[viewer])
    alert = alerts.raise_alert(alerts.FEE_CEILING, "Fees would pass the ceiling.")
    db.session.commit()
    login(client, viewer)
    assert client.post(f"/projects/{project.id}/alerts/{alert.id}/resolve").status_code in (
        403,
        404,
    )
    assert alerts.open_counts() == {alerts.FEE_CEILING: 1}

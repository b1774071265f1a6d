"""Check-then-set races, on PostgreSQL with real concurrency: threads, each with its own session
(or its own test client, hence its own request), released together by a barrier.

For each race: exactly one request wins, the others get a clear answer and change nothing, no
request fails with a 500, and the final state is right. The number of competitors and a small
random delay before each (seeded, so a failure can be replayed) vary the interleavings.
"""

from __future__ import annotations

import io
import random
import secrets
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

from tests.support import pg_race

pytestmark = pytest.mark.integration

MOST = 10  # competitors at most in one race
PASSWORD = "a-long-test-password-for-races"
SEED = 8


@pytest.fixture(scope="module")
def app(race_app):
    """A worker-role app (it serves requests too) with a connection for every competitor."""
    with race_app(
        pool_size=MOST + 10,
        # Every competitor signs in as one user from one address at once: not what these test.
        LOGIN_RATE_LIMIT="1000 per minute",
        LOGIN_ACCOUNT_LIMIT="1000 per minute",
        LOGIN_IP_LIMIT="1000 per minute",
        WTF_CSRF_ENABLED=False,
        CHAIN_EPHEMERAL=True,
    ) as app:
        yield app


def race(count: int, seed: int, contender: Callable[[int, Callable[[], None]], object]) -> list:
    """Run ``contender(i, go)`` in ``count`` threads; their results (or exceptions), in order.

    A contender gets ready (its connection, a signed-in client), then calls ``go()``: that waits
    for all the others to be ready and for the contender's own small delay, then it acts.
    """
    return pg_race.race(count, contender, seed=seed, what="a contender")


def _wait(app, check, what: str, timeout: float = 60):
    return pg_race.wait_for(app, check, what, timeout, every=0.1)


def _admin_and_project(project_type: str = "cva"):
    from portal.accounts import services as accounts
    from portal.projects import services as projects

    roles = accounts.seed_roles()
    user = accounts.create_user(
        f"race-{secrets.token_hex(5)}@example.org", "Racer", PASSWORD, roles["admin"]
    )
    project = projects.create({"name": f"Race {secrets.token_hex(4)}", "type": project_type}, user)
    projects.change_status(project, "active")
    return user, project


def _second_admin() -> str:
    """Another admin, who may approve what the racer asked for; their email."""
    from portal.accounts import services as accounts
    from portal.extensions import db

    roles = accounts.seed_roles()
    user = accounts.create_user(
        f"approver-{secrets.token_hex(5)}@example.org", "Approver", PASSWORD, roles["admin"]
    )
    db.session.commit()
    return user.email


def _approve_latest(app, email: str) -> None:
    """``email`` approves the newest pending request through the decide form."""
    from portal.approvals.models import ApprovalRequest
    from portal.extensions import db

    with app.app_context():
        rid = db.session.scalar(
            select(ApprovalRequest.id)
            .where(ApprovalRequest.status == "pending")
            .order_by(ApprovalRequest.id.desc())
        )
        db.session.remove()
    answer = _signed_in(app, email).post(
        f"/approvals/{rid}/decide", data={f"r{rid}-decision": "approve", f"r{rid}-reason": ""}
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)[:2000]


def _phone() -> str:
    return f"98{41_000_000 + secrets.randbelow(8_000_000):08d}"


def _signed_in(app, email: str):
    client = app.test_client()
    reply = client.post("/login", data={"email": email, "password": PASSWORD})
    assert reply.status_code == 302, reply.status_code
    return client


def _flashes(client) -> list[tuple[str, str]]:
    with client.session_transaction() as session:
        return list(session.get("_flashes", []))


# --------------------------------------------------------------------------- import commit


def _checked_batch(user, project, people: int):
    """An uploaded import of ``people`` new rows, dry run done: ready to commit."""
    from portal.extensions import db
    from portal.imports import pipeline, services

    rows = "".join(f"Person {i},{_phone()}\n" for i in range(people))
    upload = FileStorage(
        io.BytesIO(("Full name,Mobile\n" + rows).encode()),
        filename="people.csv",
        content_type="text/csv",
    )
    batch = services.create_batch(upload, project=project, user=user)
    db.session.commit()
    pipeline.analyse(batch, lambda *a: None)
    db.session.commit()
    assert (batch.status, batch.new_rows) == ("ready", people)
    return batch.id


@pytest.mark.parametrize("count", [2, 3, 6, MOST])
def test_commit_posts_at_once_queue_one_commit(app, count):
    from portal.extensions import db
    from portal.imports.models import ImportBatch
    from portal.jobs.broker import get_broker
    from portal.jobs.models import Job
    from workers.runtime import start_worker

    with app.app_context():
        user, project = _admin_and_project()
        db.session.commit()
        batch_id = _checked_batch(user, project, people=4)
        email, project_id = user.email, project.id
    get_broker(app).flush_all()

    def commit(i, go):
        client = _signed_in(app, email)
        go()
        reply = client.post(f"/imports/{batch_id}/commit", data={"mode": "valid_only"})
        return reply.status_code, _flashes(client)

    results = race(count, SEED + count, commit)
    assert all(not isinstance(r, Exception) for r in results), results
    assert {status for status, _ in results} == {302}, results  # no 500, no error page
    won = [flashes for _, flashes in results if not flashes]
    lost = [flashes for _, flashes in results if flashes]
    assert len(won) == 1, results
    assert all(f == [("error", "This import is already being committed.")] for f in lost), lost

    with app.app_context():
        jobs = db.session.scalars(select(Job).where(Job.kind == "imports.commit")).all()
        mine = [j for j in jobs if j.payload["batch_id"] == batch_id]
        assert len(mine) == 1
        batch = db.session.get(ImportBatch, batch_id)
        assert (batch.status, batch.job_id) == ("committing", mine[0].id)

    worker = start_worker(app, threads=2)
    try:

        def done():
            return db.session.get(ImportBatch, batch_id).status in ("committed", "failed")

        _wait(app, done, "the commit")
    finally:
        worker.stop()
    with app.app_context():
        batch = db.session.get(ImportBatch, batch_id)
        assert (batch.status, batch.imported_rows, batch.message) == ("committed", 4, "")
        assert _members(project_id) == 4


def _members(project_id: int) -> int:
    from portal.beneficiaries.models import ProjectBeneficiary
    from portal.extensions import db

    return db.session.scalar(
        select(func.count())
        .select_from(ProjectBeneficiary)
        .where(ProjectBeneficiary.project_id == project_id)
    )


@pytest.mark.parametrize("strays", [1, 3])
def test_a_second_commit_job_never_fails_the_import(app, strays):
    """Jobs queued for one import besides its own (as two commit clicks queued before): they
    run side by side with it, and none of them runs the commit again or marks it failed."""
    from portal.extensions import db
    from portal.imports import services
    from portal.imports.models import ImportBatch
    from portal.jobs import dispatch
    from portal.jobs.broker import get_broker
    from portal.jobs.models import Job
    from workers.runtime import start_worker

    with app.app_context():
        user, project = _admin_and_project()
        db.session.commit()
        batch_id = _checked_batch(user, project, people=3)
        batch = db.session.get(ImportBatch, batch_id)
        services.start_commit(batch, user, "all")
        others = [
            dispatch.enqueue("imports.commit", {"batch_id": batch_id}, project_id=project.id).id
            for _ in range(strays)
        ]
        db.session.commit()
        project_id = project.id
    get_broker(app).flush_all()  # sent again below, all at once
    with app.app_context():
        dispatch.send_now(
            [
                (j.id, j.kind, j.queue)
                for j in db.session.scalars(select(Job).where(Job.project_id == project_id))
            ]
        )
    worker = start_worker(app, threads=strays + 1)
    try:

        def finished():
            jobs = db.session.scalars(select(Job).where(Job.project_id == project_id)).all()
            return all(j.status == "succeeded" for j in jobs) and jobs

        jobs = _wait(app, finished, "every commit job")
    finally:
        worker.stop()
    skipped = [j for j in jobs if "skipped" in (j.result or {})]
    assert sorted(j.id for j in skipped) == sorted(others)
    with app.app_context():
        batch = db.session.get(ImportBatch, batch_id)
        assert (batch.status, batch.imported_rows, batch.message) == ("committed", 3, "")
        assert _members(project_id) == 3


def test_a_losing_job_leaves_a_committed_import_alone(app):
    """The failure path itself: a run that is not the batch's does not overwrite its state."""
    from portal.extensions import db
    from portal.imports import services
    from portal.imports.models import ImportBatch

    with app.app_context():
        user, project = _admin_and_project()
        db.session.commit()
        batch_id = _checked_batch(user, project, people=2)
        batch = db.session.get(ImportBatch, batch_id)
        own = services.start_commit(batch, user, "all").id
        db.session.commit()
        assert not services.record_failure(batch_id, "a stray run failed", own + 10_000)
        assert db.session.get(ImportBatch, batch_id).status == "committing"
        assert services.record_failure(batch_id, "its own run failed", own)
        assert db.session.get(ImportBatch, batch_id).status == "failed"
        # Failed already: a late report changes nothing.
        assert not services.record_failure(batch_id, "again", own)
        assert db.session.get(ImportBatch, batch_id).message == "its own run failed"


# --------------------------------------------------------------------------- disbursements


def _funded(project, funded: int) -> None:
    """The project's contracts as deployed and funded (``funded`` base units, 2 decimals)."""
    from portal.chain import contracts
    from portal.chain.models import DEPLOYED, ProjectChain
    from portal.extensions import db

    db.session.add(
        ProjectChain(
            project_id=project.id,
            chain_id=31337,
            symbol="RACE",
            decimals=2,
            contract_kind=contracts.ENTITLEMENTS,
            status=DEPLOYED,
            token_address="0x" + secrets.token_hex(20),
            contract_address="0x" + secrets.token_hex(20),
            funded=funded,
        )
    )
    db.session.flush()


def _drafts(amounts: list[int], funded: int):
    """A funded project, one person, and a draft per amount (base units); their ids."""
    from portal.beneficiaries import services as beneficiaries
    from portal.disbursements import services as disbursements
    from portal.extensions import db

    user, project = _admin_and_project()
    _funded(project, funded)
    person = beneficiaries.create({"name": "Payee", "phone": _phone()}, project=project)
    ids = []
    for n, amount in enumerate(amounts):
        draft, _ = disbursements.create(
            project,
            title=f"Draft {n}",
            amount=amount,
            group_id=None,
            beneficiary_ids=[person.id],
            batch_size=10,
            user_id=user.id,
        )
        ids.append(draft.id)
    db.session.commit()
    return project.id, ids, user.email


def _start(app, disbursement_id: int, go) -> str:
    """Start one disbursement in a thread's own session: "started" or the refusal."""
    from portal.disbursements import services as disbursements
    from portal.disbursements.models import Disbursement
    from portal.errors import DomainError
    from portal.extensions import db

    with app.app_context():
        try:
            db.session.connection()
            draft = db.session.get(Disbursement, disbursement_id)
            go()
            disbursements.start(draft, None)
            db.session.commit()
            return "started"
        except DomainError as exc:
            db.session.rollback()
            return str(exc)
        finally:
            db.session.remove()


@pytest.mark.parametrize("count", [2, 4, 7, MOST])
def test_disbursements_started_at_once_never_promise_more_than_funded(app, count):
    from portal.disbursements.models import Disbursement
    from portal.extensions import db
    from portal.jobs.broker import get_broker
    from portal.jobs.models import Job

    funded = 10_000  # 100.00 RACE
    amounts = random.Random(SEED * count).choices(range(1_500, 6_001, 100), k=count)
    with app.app_context():
        project_id, ids, _ = _drafts(amounts, funded)

    results = race(count, SEED + count, lambda i, go: _start(app, ids[i], go))
    get_broker(app).flush_all()  # no chain here: the batch jobs are not run

    started = [amounts[i] for i, r in enumerate(results) if r == "started"]
    refused = [(amounts[i], r) for i, r in enumerate(results) if r != "started"]
    assert started, results
    assert sum(started) <= funded
    left = funded - sum(started)
    for amount, message in refused:
        # Free funds only shrink, so each refusal was right at the end too.
        assert amount > left, (amount, left, results)
        assert "more: fund the project or reduce the amount" in message, message
        assert "of the NPR\u00a0100.00 funded is not yet promised" in message, message
    with app.app_context():
        rows = db.session.scalars(
            select(Disbursement).where(Disbursement.project_id == project_id)
        ).all()
        running = sorted(d.total for d in rows if d.status == "running")
        assert running == sorted(started)
        drafts = [d for d in rows if d.status == "draft"]
        assert len(drafts) == len(refused)
        batches = db.session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.kind == "disbursement.batch", Job.project_id == project_id)
        )
        assert batches == len(started)  # one batch each (one person)


@pytest.mark.parametrize("count", [2, 5, MOST])
def test_one_disbursement_started_many_times_starts_once(app, count):
    from portal.disbursements.models import Disbursement
    from portal.extensions import db
    from portal.jobs.broker import get_broker
    from portal.jobs.models import Job

    with app.app_context():
        project_id, (draft_id,), _ = _drafts([2_500], funded=10_000)

    results = race(count, SEED + count, lambda i, go: _start(app, draft_id, go))
    get_broker(app).flush_all()
    assert results.count("started") == 1, results
    assert set(results) == {"started", "This disbursement has already been started."}, results
    with app.app_context():
        assert db.session.get(Disbursement, draft_id).status == "running"
        jobs = db.session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.kind == "disbursement.batch", Job.project_id == project_id)
        )
        assert jobs == 1


def test_start_page_answers_the_loser_clearly(app):
    """Through the route: the second start of a disbursement is a 409 page that says why."""
    from portal.jobs.broker import get_broker

    with app.app_context():
        _, (first, second), email = _drafts([6_000, 6_000], funded=10_000)
        approver = _second_admin()
    client = _signed_in(app, email)
    assert client.post(f"/disbursements/{first}/start").status_code == 302
    asked = client.post(f"/disbursements/{first}/start")
    assert asked.status_code == 409 and b"already waiting for approval" in asked.data
    # Someone else approves: the start runs with the approval.
    _approve_latest(app, approver)
    again = client.post(f"/disbursements/{first}/start")
    assert again.status_code == 409
    assert b"already been started" in again.data
    short = client.post(f"/disbursements/{second}/start")
    assert short.status_code == 409
    text = short.get_data(as_text=True)
    assert "needs NPR\u00a020.00 more: fund the project or reduce the amount" in text
    assert "NPR\u00a040.00 of the NPR\u00a0100.00 funded is not yet promised" in text
    get_broker(app).flush_all()


# --------------------------------------------------------------------------- Kobo webhook


def _kobo_source(project_id: int) -> tuple[int, str]:
    from portal.extensions import db
    from portal.imports import kobo
    from portal.imports.models import KOBO, ImportSource

    source = ImportSource(name=f"kobo-{secrets.token_hex(4)}", kind=KOBO, project_id=project_id)
    db.session.add(source)
    db.session.flush()
    secret = kobo.new_webhook_secret(source)
    db.session.commit()
    return source.id, secret


def _deliver(app, source_id: int, secret: str, payload: dict, go):
    client = app.test_client()
    go()
    reply = client.post(
        f"/api/kobo/{source_id}/submissions", json=payload, headers={"X-Portal-Secret": secret}
    )
    return reply.status_code, reply.get_json(silent=True) or {}


@pytest.mark.parametrize("count", [2, 5, MOST])
def test_one_submission_delivered_many_times_at_once(app, count):
    from portal.extensions import db
    from portal.imports.models import KoboSubmission
    from tests.support.kobo_server import submission

    with app.app_context():
        _, project = _admin_and_project()
        db.session.commit()
        project_id = project.id
        source_id, secret = _kobo_source(project_id)
    uuid = f"race-{secrets.token_hex(6)}"
    payload = submission(uuid, "Sent Many Times", _phone())

    results = race(count, SEED + count, lambda i, go: _deliver(app, source_id, secret, payload, go))
    assert all(not isinstance(r, Exception) for r in results), results
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * (count - 1) + [201], results
    for status, body in results:
        assert body["uuid"] == uuid and body["outcome"] == "imported"
        assert body.get("repeat", False) == (status == 200)
    with app.app_context():
        receipts = db.session.scalars(
            select(KoboSubmission).where(KoboSubmission.source_id == source_id)
        ).all()
        assert [(r.uuid, r.outcome) for r in receipts] == [(uuid, "imported")]
        assert _members(project_id) == 1


@pytest.mark.parametrize("count", [2, 6])
def test_one_person_in_several_submissions_at_once(app, count):
    """Different uuids, one phone: one is imported, the others are duplicates; no 500."""
    from portal.extensions import db
    from portal.imports.models import KoboSubmission
    from tests.support.kobo_server import submission

    with app.app_context():
        _, project = _admin_and_project()
        db.session.commit()
        project_id = project.id
        source_id, secret = _kobo_source(project_id)
    phone = _phone()
    payloads = [submission(f"twin-{secrets.token_hex(6)}", "Twin", phone) for _ in range(count)]

    results = race(
        count, SEED + count, lambda i, go: _deliver(app, source_id, secret, payloads[i], go)
    )
    assert all(not isinstance(r, Exception) for r in results), results
    assert sorted(status for status, _ in results) == [200] * (count - 1) + [201], results
    outcomes = sorted(body["outcome"] for _, body in results)
    assert outcomes == ["duplicate"] * (count - 1) + ["imported"], results
    with app.app_context():
        receipts = db.session.scalars(
            select(KoboSubmission.outcome).where(KoboSubmission.source_id == source_id)
        ).all()
        assert sorted(receipts) == outcomes
        assert _members(project_id) == 1


# --------------------------------------------------------------------------- other transitions


@pytest.mark.parametrize("count", [2, 5, MOST])
def test_vendor_approved_and_suspended_at_once(app, count):
    """A pending vendor, half the staff approving and half suspending: one decision holds, the
    others are told the vendor's state changed, and the audit log has one entry."""
    from portal.audit.models import AuditEntry
    from portal.errors import DomainError
    from portal.extensions import db
    from portal.vendors import services as vendors
    from portal.vendors.models import Vendor

    with app.app_context():
        _, project = _admin_and_project()
        vendor = vendors.register(
            {"name": "Race Shop", "category": "shop", "contact_name": "Owner", "phone": _phone()},
            project=project,
        )
        db.session.commit()
        vendor_id = vendor.id
    wanted = ["approved" if i % 2 == 0 else "suspended" for i in range(count)]

    def decide(i, go):
        with app.app_context():
            try:
                found = db.session.get(Vendor, vendor_id)
                go()
                vendors.change_status(found, wanted[i], "race")
                db.session.commit()
                return "done"
            except DomainError as exc:
                db.session.rollback()
                return str(exc)
            finally:
                db.session.remove()

    results = race(count, SEED + count, decide)
    assert results.count("done") == 1, results
    winner = wanted[results.index("done")]
    for result in results:
        assert result == "done" or result.startswith(f"This vendor is {winner} now"), results
    with app.app_context():
        assert db.session.get(Vendor, vendor_id).status == winner
        entries = db.session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.action.in_(("vendor.approved", "vendor.suspended")),
                AuditEntry.target_id == str(vendor_id),
            )
        )
        assert entries == 1


@pytest.mark.parametrize("count", [2, MOST])
def test_a_failed_job_retried_at_once_is_queued_once(app, count):
    from portal.errors import DomainError
    from portal.extensions import db
    from portal.jobs import dispatch
    from portal.jobs import services as jobs
    from portal.jobs.broker import get_broker
    from portal.jobs.models import Job

    with app.app_context():
        job = dispatch.enqueue("system.diagnostic", {})
        job.status, job.attempts, job.error = "failed", 3, "boom"
        db.session.commit()
        job_id = job.id
    get_broker(app).flush_all()

    def retry(i, go):
        with app.app_context():
            try:
                found = db.session.get(Job, job_id)
                go()
                jobs.retry(found)
                db.session.commit()
                return "retried"
            except DomainError as exc:
                db.session.rollback()
                return str(exc)
            finally:
                db.session.remove()

    results = race(count, SEED + count, retry)
    assert results.count("retried") == 1, results
    assert set(results) == {"retried", "A queued job cannot be retried."}, results
    sent = get_broker(app).client.hlen("dramatiq:default.msgs")
    get_broker(app).flush_all()
    assert sent == 1  # one message for the one retry
    with app.app_context():
        found = db.session.get(Job, job_id)
        assert (found.status, found.attempts, found.error) == ("queued", 0, None)

"""The services on PostgreSQL: migrations, scoping, encrypted PII, the audit chain, jobs on a
real Redis broker, and what must hold when two requests race."""

from __future__ import annotations

import secrets
import threading
from datetime import date

import pytest
from sqlalchemy import func, select, text

from tests.support import services as svc
from tests.support import stack

pytestmark = pytest.mark.integration

PASSWORD = "a-long-test-password-42"


@pytest.fixture(scope="module")
def app(app_factory, pg_url):
    return app_factory(pg_url)


def _phone() -> str:
    return f"98{41000000 + secrets.randbelow(8_000_000):08d}"


def _user(role: str = "admin"):
    from portal.accounts import services as accounts

    roles = accounts.seed_roles()
    return accounts.create_user(
        f"{role.replace(' ', '-')}-{secrets.token_hex(4)}@example.org",
        role.title(),
        PASSWORD,
        roles[role],
    )


def _run_threads(target, count: int, timeout: float = 60) -> None:
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a worker thread hung (deadlock?)"


def test_migrations_reach_head_on_postgresql(app):
    from alembic.script import ScriptDirectory

    from portal.extensions import db

    head = ScriptDirectory(str(svc.REPO_ROOT / "migrations")).get_current_head()
    with app.app_context():
        assert db.engine.dialect.name == "postgresql"
        assert db.session.scalar(text("select version_num from alembic_version")) == head


def test_services_on_postgresql(app):
    from portal.audit.services import verify
    from portal.beneficiaries import normalize
    from portal.beneficiaries import services as beneficiaries
    from portal.extensions import db
    from portal.projects import services as projects
    from portal.vendors import services as vendors

    phone = _phone()
    with app.app_context():
        admin = _user("admin")
        manager = _user("programme manager")
        outsider = _user("programme manager")
        project = projects.create(
            {
                "name": f"IT project {secrets.token_hex(3)}",
                "type": "cva",
                "currency": "NPR",
                "start_date": date(2026, 11, 1),
            },
            admin,
        )
        projects.change_status(project, "active")
        projects.set_members(project, {admin.id, manager.id})
        person = beneficiaries.create(
            {
                "name": "Sita Tamang",
                "phone": phone,
                "national_id": f"NP{secrets.randbelow(10**9)}",
                "date_of_birth": date(1980, 5, 17),
                "location": "Ward 1",
            },
            project=project,
        )
        vendor = vendors.register(
            {"name": "Valley Store", "category": "shop", "phone": _phone(), "location": "Ward 1"},
            project,
        )
        vendors.change_status(vendor, "approved")
        db.session.commit()
        ids = {"person": person.id, "project": project.id, "vendor": vendor.id}
        users = {"manager": manager.id, "outsider": outsider.id}

    with app.app_context():
        from portal.accounts.models import User

        manager = db.session.get(User, users["manager"])
        outsider = db.session.get(User, users["outsider"])
        # Exact search by phone goes through the blind index; PII is stored encrypted.
        found = db.session.scalars(
            beneficiaries.search(manager, beneficiaries.ListQuery(q=phone))
        ).all()
        assert [p.id for p in found] == [ids["person"]]
        assert found[0].pii.name == "Sita Tamang"
        stored = db.session.scalar(
            text("select phone from beneficiary_pii where beneficiary_id = :id"),
            {"id": ids["person"]},
        )
        assert stored and phone[-8:] not in stored
        # Scope: a manager who is not a member sees neither the person nor the vendor.
        assert db.session.scalars(beneficiaries.visible(outsider)).all() == []
        assert ids["vendor"] not in [v.id for v in db.session.scalars(vendors.visible(outsider))]
        assert ids["vendor"] in [v.id for v in db.session.scalars(vendors.visible(manager))]
        # The same phone cannot be enrolled twice.
        with pytest.raises(normalize.InvalidValue):
            beneficiaries.create({"name": "Someone Else", "phone": phone})
        db.session.rollback()

        result = verify()
        assert result.ok, result.problems
        actions = set(db.session.scalars(text("select action from audit_entries")))
        assert {
            "user.created",
            "project.created",
            "beneficiary.created",
            "vendor.registered",
            "vendor.approved",
        } <= actions


def test_audit_verify_detects_tampering_on_postgresql(app):
    from portal.audit.services import record, verify
    from portal.extensions import db

    with app.app_context():
        entry = record("test.tamper", "an entry to tamper with")
        db.session.commit()
        seq = entry.seq
        db.session.execute(
            text("update audit_entries set summary = 'edited' where seq = :seq"), {"seq": seq}
        )
        db.session.expire_all()  # read what the database holds, not the loaded objects
        result = verify()
        assert not result.ok
        assert f"entry {seq} was changed after it was written" in result.problems
        db.session.rollback()  # the edit is never committed
        assert verify().ok


def test_audit_verify_cli_on_postgresql(app, pg_url, redis_db, portal_secrets, tmp_path):
    env = stack.portal_env(
        database_url=pg_url, redis_url=redis_db.url, instance_dir=tmp_path, secrets=portal_secrets
    )
    out = stack.flask_cli(env, "audit-verify").stdout
    assert "audit log intact" in out


def _wait_job(app, job_id: int, statuses: tuple[str, ...], timeout: float = 30):
    from portal.extensions import db
    from portal.jobs.models import Job

    def finished():
        with app.app_context():
            job = db.session.get(Job, job_id)
            state = (job.status, job.attempts, job.result, job.error)
            db.session.remove()
            return state if state[0] in statuses else None

    return svc.wait_for(finished, timeout, interval=0.1, what=f"job {job_id} to reach {statuses}")


def test_diagnostic_job_runs_on_redis_broker(app):
    from portal.extensions import db
    from portal.jobs import services as jobs
    from portal.jobs.broker import get_broker
    from portal.jobs.models import Job, JobAttempt
    from workers.runtime import start_worker

    get_broker(app).flush_all()
    worker = start_worker(app, threads=2)
    try:
        with app.app_context():
            user = _user("admin")
            ok = jobs.run_diagnostic(user)
            failing = jobs.run_diagnostic(user, fail_times=1)
            db.session.commit()
            ok_id, failing_id = ok.id, failing.id
        status, attempts, result, _ = _wait_job(app, ok_id, ("succeeded", "failed"))
        assert (status, attempts) == ("succeeded", 1)
        assert result["database_ms"] >= 0

        # Asked to fail once with a single attempt: dead letter; a retry then succeeds.
        status, attempts, _, error = _wait_job(app, failing_id, ("failed",))
        assert "DiagnosticFailure" in error
        with app.app_context():
            jobs.retry(db.session.get(Job, failing_id))
            db.session.commit()
        status, _, _, _ = _wait_job(app, failing_id, ("succeeded", "failed"))
        assert status == "succeeded"
        with app.app_context():
            outcomes = db.session.scalars(
                select(JobAttempt.outcome)
                .where(JobAttempt.job_id == failing_id)
                .order_by(JobAttempt.number)
            ).all()
            assert outcomes == ["failed", "succeeded"]
    finally:
        worker.stop()


def test_concurrent_enrolment_of_one_phone_makes_one_row(app, monkeypatch):
    """Both requests pass the friendly duplicate check; the unique index must stop one."""
    from portal.audit.services import verify
    from portal.beneficiaries import services as beneficiaries
    from portal.beneficiaries.models import BeneficiaryPII
    from portal.crypto import blind_index
    from portal.errors import DomainError
    from portal.extensions import db

    phone = _phone()
    barrier = threading.Barrier(2, timeout=20)
    check = beneficiaries._ensure_unique

    def check_then_wait(values, exclude_id=None):
        check(values, exclude_id)
        barrier.wait()  # neither inserts before both have passed the check

    monkeypatch.setattr(beneficiaries, "_ensure_unique", check_then_wait)
    outcomes: list[str] = []

    def enrol(i: int) -> None:
        with app.app_context():
            try:
                beneficiaries.create({"name": f"Racer {i}", "phone": phone})
                db.session.commit()
                outcomes.append("created")
            except DomainError as exc:
                db.session.rollback()
                outcomes.append(f"refused: {type(exc).__name__}")
            except Exception as exc:  # shown in the assertion below
                db.session.rollback()
                outcomes.append(f"error: {exc!r}")
            finally:
                db.session.remove()

    _run_threads(enrol, 2)
    assert sorted(outcomes) == ["created", "refused: Conflict"]
    with app.app_context():
        e164 = f"+977{phone}"
        rows = db.session.scalar(
            select(func.count()).where(BeneficiaryPII.phone_index == blind_index("phone:" + e164))
        )
        assert rows == 1
        result = verify()
        assert result.ok, result.problems


def test_audit_chain_stays_valid_under_concurrent_appends(app):
    from portal.audit.models import AuditEntry, AuditHead
    from portal.audit.services import record, verify
    from portal.extensions import db

    threads, per_thread = 8, 15
    with app.app_context():
        record("test.concurrency", "before the race")
        db.session.commit()
        before = db.session.scalar(select(func.count()).select_from(AuditEntry))
    barrier = threading.Barrier(threads, timeout=20)
    errors: list[str] = []

    def append(i: int) -> None:
        barrier.wait()
        with app.app_context():
            try:
                for n in range(per_thread):
                    record("test.concurrency", f"thread {i} entry {n}", data={"t": i, "n": n})
                    db.session.commit()
            except Exception as exc:
                db.session.rollback()
                errors.append(repr(exc))
            finally:
                db.session.remove()

    _run_threads(append, threads)
    assert errors == []
    with app.app_context():
        result = verify()
        assert result.ok, result.problems
        total = db.session.scalar(select(func.count()).select_from(AuditEntry))
        assert total == before + threads * per_thread
        head = db.session.get(AuditHead, 1)
        assert head.seq == db.session.scalar(select(func.max(AuditEntry.seq))) == total


def test_first_audit_appends_race_on_an_empty_database(database_factory, app_factory):
    """On a fresh database the head row does not exist yet: concurrent first appends must not
    fail on creating it."""
    from portal.audit.services import record, verify
    from portal.extensions import db

    app = app_factory(database_factory("portal_it_fresh"))
    threads = 6
    barrier = threading.Barrier(threads, timeout=20)
    errors: list[str] = []

    def append(i: int) -> None:
        barrier.wait()
        with app.app_context():
            try:
                record("test.first", f"first append from thread {i}")
                db.session.commit()
            except Exception as exc:
                db.session.rollback()
                errors.append(repr(exc))
            finally:
                db.session.remove()

    _run_threads(append, threads)
    assert errors == []
    with app.app_context():
        result = verify()
        assert result.ok and result.checked == threads, result.problems

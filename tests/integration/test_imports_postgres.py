"""Imports on PostgreSQL: the dry run and both commit modes, dedup against rows already there,
the Kobo webhook's receipts, and the upload kept encrypted on disk."""

from __future__ import annotations

import io
import secrets

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def app(app_factory, pg_url):
    return app_factory(pg_url)


def _csv(rows: list[tuple[str, str, str]]) -> FileStorage:
    text = "Full name,Mobile,NID\n" + "".join(f"{n},{p},{i}\n" for n, p, i in rows)
    return FileStorage(io.BytesIO(text.encode()), filename="people.csv", content_type="text/csv")


def _setup():
    from portal.accounts import services as accounts
    from portal.projects import services as projects

    roles = accounts.seed_roles()
    user = accounts.create_user(
        f"imp-{secrets.token_hex(4)}@example.org", "Importer", "a-long-password-1", roles["admin"]
    )
    project = projects.create({"name": f"Import {secrets.token_hex(3)}", "type": "cva"}, user)
    return user, project


def _run(batch, mode: str):
    from portal.imports import pipeline

    pipeline.analyse(batch, lambda *a: None)
    batch.status, batch.mode = "committing", mode
    return pipeline.commit(batch, lambda *a: None)


@pytest.fixture(params=["spare free", "spare taken"])
def spare(request):
    """Run the commit with the process's spare connection free (read-ahead in a thread) and
    taken by another import (read inline on the job's own connection)."""
    from portal import db_pool

    if request.param == "spare free":
        yield
        return
    with db_pool.spare() as taken:
        assert taken
        yield


def test_import_modes_and_dedup_on_postgresql(app, spare):
    from portal.beneficiaries import services as beneficiaries
    from portal.beneficiaries.models import BeneficiaryPII, ProjectBeneficiary
    from portal.extensions import db
    from portal.imports import pipeline, services
    from portal.jobs.lifecycle import PermanentJobError

    base = 41_000_000 + secrets.randbelow(8_000_000)
    phones = [f"98{base + i:08d}" for i in range(6)]
    nid = f"PGX{secrets.token_hex(4).upper()}"
    with app.app_context():
        user, project = _setup()
        beneficiaries.create({"name": "Already Here", "phone": phones[0]}, project=project)
        db.session.commit()

        rows = [("Already Here", phones[0], ""), ("New One", phones[1], nid)]
        rows += [("New Two", phones[2], ""), ("Bad", "123", ""), ("Twin", phones[2], "")]
        batch = services.create_batch(_csv(rows), project=project, user=user)
        db.session.commit()
        pipeline.analyse(batch, lambda *a: None)
        db.session.commit()
        assert (batch.new_rows, batch.duplicate_rows, batch.invalid_rows) == (2, 2, 1)
        batch.status, batch.mode = "committing", "all"
        with pytest.raises(PermanentJobError, match="Nothing was imported"):
            pipeline.commit(batch, lambda *a: None)
        db.session.rollback()

        batch = services.create_batch(_csv(rows), project=project, user=user)
        db.session.commit()
        assert _run(batch, "valid_only") == 2
        db.session.commit()
        count = db.session.scalar(
            select(func.count())
            .select_from(ProjectBeneficiary)
            .where(ProjectBeneficiary.project_id == project.id)
        )
        assert count == 3
        stored = db.session.scalars(select(BeneficiaryPII.name)).all()
        assert "New One" in stored  # decrypts through the type
        raw = db.session.execute(
            select(func.count())
            .select_from(BeneficiaryPII)
            .where(BeneficiaryPII.__table__.c.name.cast(db.String).like("%New One%"))
        ).scalar()
        assert raw == 0  # what PostgreSQL holds is ciphertext

        # The same file again: everyone is a duplicate now.
        again = services.create_batch(_csv(rows), project=project, user=user)
        db.session.commit()
        pipeline.analyse(again, lambda *a: None)
        assert again.new_rows == 0 and again.duplicate_rows == 4


def test_kobo_webhook_receipts_on_postgresql(app):
    from portal.extensions import db
    from portal.imports import kobo
    from portal.imports.models import KOBO, ImportSource, KoboSubmission
    from tests.support.kobo_server import submission

    with app.app_context():
        _, project = _setup()
        source = ImportSource(name=f"kobo-{secrets.token_hex(3)}", kind=KOBO, project_id=project.id)
        db.session.add(source)
        db.session.commit()
        phone = f"98{41_000_000 + secrets.randbelow(8_000_000):08d}"
        payload = submission(f"uuid-{secrets.token_hex(6)}", "Webhook Person", phone)
        receipt, first = kobo.import_submission(source, payload)
        db.session.commit()
        assert first and receipt.outcome == "imported" and receipt.beneficiary_id
        again, first = kobo.import_submission(source, payload)
        assert not first and again.id == receipt.id
        count = db.session.scalar(
            select(func.count())
            .select_from(KoboSubmission)
            .where(KoboSubmission.source_id == source.id)
        )
        assert count == 1


def test_commit_in_overlapped_chunks_stays_all_or_nothing(app, monkeypatch, spare):
    import threading

    from portal.beneficiaries import groups
    from portal.beneficiaries import services as beneficiaries
    from portal.beneficiaries.models import BeneficiaryPII, GroupMember, ProjectBeneficiary
    from portal.extensions import db
    from portal.imports import pipeline, services
    from portal.jobs.lifecycle import PermanentJobError

    monkeypatch.setattr(pipeline, "COMMIT_CHUNK", 2)  # four chunks through the thread
    base = 41_000_000 + secrets.randbelow(8_000_000)
    tag = secrets.token_hex(4).upper()
    rows = [(f"Person {k}", f"98{base + k:08d}", f"PGC{tag}{k}") for k in range(7)]
    with app.app_context():
        user, project = _setup()
        group = groups.create(project, f"Round {secrets.token_hex(3)}", "overlap test")
        db.session.commit()
        batch = services.create_batch(_csv(rows), project=project, user=user, group=group)
        db.session.commit()
        pipeline.analyse(batch, lambda *a: None)
        db.session.commit()
        assert batch.new_rows == 7

        # Enrolled by hand since the dry run: row 7 (the fourth chunk) is now a duplicate.
        beneficiaries.create({"name": "Meanwhile", "phone": rows[5][1]}, project=project)
        db.session.commit()
        batch.status, batch.mode = "committing", "all"
        with pytest.raises(PermanentJobError, match=r"Row 7 \(phone\).*Nothing was imported"):
            pipeline.commit(batch, lambda *a: None)
        db.session.rollback()
        members = select(func.count()).select_from(ProjectBeneficiary)
        members = members.where(ProjectBeneficiary.project_id == project.id)
        assert db.session.scalar(members) == 1  # only the person enrolled by hand
        assert not [t for t in threading.enumerate() if t.name.startswith("import-")]

        batch.status, batch.mode = "committing", "valid_only"
        progress = []
        assert pipeline.commit(batch, lambda *a: progress.append(a)) == 6
        db.session.commit()
        assert db.session.scalar(members) == 7
        in_group = select(func.count()).select_from(GroupMember)
        assert db.session.scalar(in_group.where(GroupMember.group_id == group.id)) == 6
        names = db.session.scalars(
            select(BeneficiaryPII.name)
            .join(
                ProjectBeneficiary,
                ProjectBeneficiary.beneficiary_id == BeneficiaryPII.beneficiary_id,
            )
            .where(ProjectBeneficiary.project_id == project.id)
        ).all()
        assert sorted(names) == sorted(["Meanwhile"] + [r[0] for r in rows if r[1] != rows[5][1]])
        assert progress[-1] == ("saved", 7, 7)


def test_database_duplicates_by_arrays_on_postgresql(app, monkeypatch):
    from portal.beneficiaries import services as beneficiaries
    from portal.crypto import blind_index
    from portal.extensions import db
    from portal.imports import dedup

    monkeypatch.setattr(dedup, "DB_CHUNK", 2)  # several chunks, of unequal numbers
    base = 41_000_000 + secrets.randbelow(8_000_000)
    with app.app_context():
        _, project = _setup()
        by_phone = beneficiaries.create({"name": "A", "phone": f"98{base:08d}"}, project=project)
        nid = f"ARR{secrets.token_hex(4).upper()}"
        by_nid = beneficiaries.create(
            {"name": "B", "phone": f"98{base + 1:08d}", "national_id": nid}, project=project
        )
        db.session.commit()
        strangers = [blind_index(f"phone:+977{base + 100 + k}") for k in range(5)]
        phones, nids = dedup.existing_in_db(
            db.session,
            [*strangers, by_phone.pii.phone_index, None],
            [blind_index("nid:NOBODY1"), by_nid.pii.national_id_index],
        )
        # B is found by national ID; its phone was not asked about, so it is not a phone hit.
        assert phones == {by_phone.pii.phone_index}
        assert nids == {by_nid.pii.national_id_index}
        with pytest.raises(ValueError, match="hex"):
            dedup.existing_in_db(db.session, ["not hex, {quoted}"], [])


def test_the_commit_asks_the_database_only_about_rows_found_enrolled(app):
    from sqlalchemy import event

    from portal.beneficiaries import services as beneficiaries
    from portal.extensions import db
    from portal.imports import pipeline, services

    base = 41_000_000 + secrets.randbelow(8_000_000)
    rows = [(f"Person {k}", f"98{base + k:08d}", "") for k in range(5)]
    with app.app_context():
        user, project = _setup()
        beneficiaries.create({"name": "Known", "phone": rows[2][1]}, project=project)
        db.session.commit()
        batch = services.create_batch(_csv(rows), project=project, user=user)
        db.session.commit()
        pipeline.analyse(batch, lambda *a: None)
        db.session.commit()
        assert (batch.new_rows, batch.duplicate_rows) == (4, 1)

        statements = []

        def seen(conn, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", seen)
        try:
            batch.status, batch.mode = "committing", "valid_only"
            assert pipeline.commit(batch, lambda *a: None) == 4
            db.session.commit()
        finally:
            event.remove(db.engine, "before_cursor_execute", seen)
        lookups = [s for s in statements if "FROM beneficiary_pii" in s]
        assert len(lookups) == 1  # the one row found enrolled, asked about again
        assert not [s for s in statements if s.startswith("ROLLBACK TO SAVEPOINT")]

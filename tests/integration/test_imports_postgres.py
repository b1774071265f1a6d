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


def test_import_modes_and_dedup_on_postgresql(app):
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

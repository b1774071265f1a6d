"""Bulk onboarding: where rows come from (sources), each upload or pull (batches), Kobo receipts."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.crypto import Encrypted
from portal.extensions import db
from portal.timeutil import utcnow

FILE, KOBO = "file", "kobo"
# A batch's life: the file is kept (encrypted), analysed as a dry run, then committed.
UPLOADED, ANALYSING, READY, COMMITTING, COMMITTED, FAILED, DISCARDED = (
    "uploaded",
    "analysing",
    "ready",
    "committing",
    "committed",
    "failed",
    "discarded",
)
ALL_OR_NOTHING, VALID_ONLY = "all", "valid_only"


class ImportSource(db.Model):
    """A named origin of rows whose column mapping is remembered (a form, a partner's sheet)."""

    __tablename__ = "import_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default=FILE)
    mapping_json: Mapped[str] = mapped_column(Text, default="{}")
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("beneficiary_groups.id", ondelete="SET NULL")
    )
    kobo_server_url: Mapped[str | None] = mapped_column(String(255))
    kobo_asset_uid: Mapped[str | None] = mapped_column(String(64))
    kobo_token: Mapped[str | None] = mapped_column(Encrypted)
    # Only a hash: the secret is shown once, when it is made.
    webhook_secret_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def mapping(self) -> dict[str, str]:
        return json.loads(self.mapping_json or "{}")


class ImportBatch(db.Model):
    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("import_sources.id", ondelete="SET NULL"), index=True
    )
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("beneficiary_groups.id", ondelete="SET NULL")
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    file_id: Mapped[str | None] = mapped_column(ForeignKey("stored_files.id", ondelete="SET NULL"))
    errors_file_id: Mapped[str | None] = mapped_column(
        ForeignKey("stored_files.id", ondelete="SET NULL")
    )
    filename: Mapped[str] = mapped_column(String(255), default="")
    kind: Mapped[str] = mapped_column(String(10), default="csv")
    sheet: Mapped[str | None] = mapped_column(String(120))
    sheets_json: Mapped[str] = mapped_column(Text, default="[]")
    status: Mapped[str] = mapped_column(String(12), default=UPLOADED, index=True)
    mode: Mapped[str] = mapped_column(String(12), default=ALL_OR_NOTHING)
    headers_json: Mapped[str] = mapped_column(Text, default="[]")
    mapping_json: Mapped[str] = mapped_column(Text, default="{}")
    total_rows: Mapped[int] = mapped_column(default=0)
    new_rows: Mapped[int] = mapped_column(default=0)
    duplicate_rows: Mapped[int] = mapped_column(default=0)
    invalid_rows: Mapped[int] = mapped_column(default=0)
    imported_rows: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    errors_preview_json: Mapped[str] = mapped_column(Text, default="[]")
    message: Mapped[str] = mapped_column(Text, default="")
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    committed_at: Mapped[datetime | None]
    source = relationship("ImportSource")
    project = relationship("Project")
    group = relationship("BeneficiaryGroup")

    @property
    def headers(self) -> list[str]:
        return json.loads(self.headers_json or "[]")

    @property
    def mapping(self) -> dict[str, str]:
        return json.loads(self.mapping_json or "{}")

    @property
    def sheets(self) -> list[str]:
        return json.loads(self.sheets_json or "[]")

    @property
    def errors_preview(self) -> list[dict]:
        return json.loads(self.errors_preview_json or "[]")


class KoboSubmission(db.Model):
    """One Kobo submission seen, by its uuid: the webhook and the pull never import it twice."""

    __tablename__ = "kobo_submissions"
    __table_args__ = (UniqueConstraint("source_id", "uuid", name="uq_kobo_submission"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("import_sources.id", ondelete="CASCADE"))
    uuid: Mapped[str] = mapped_column(String(64))
    beneficiary_id: Mapped[int | None] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="SET NULL")
    )
    outcome: Mapped[str] = mapped_column(String(12))
    message: Mapped[str] = mapped_column(String(500), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

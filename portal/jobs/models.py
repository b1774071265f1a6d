"""The Job row: the database, not Redis, is the truth about background work."""

from __future__ import annotations

import json
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.timeutil import utcnow

QUEUED, RUNNING, SUCCEEDED, RETRYING, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "retrying",
    "failed",
    "cancelled",
)
STATUSES = (QUEUED, RUNNING, SUCCEEDED, RETRYING, FAILED, CANCELLED)
# A status as people read it; "stuck" is a running job whose worker is gone.
STATUS_LABELS = {
    QUEUED: _l("queued"),
    RUNNING: _l("running"),
    SUCCEEDED: _l("succeeded"),
    RETRYING: _l("retrying"),
    FAILED: _l("failed"),
    CANCELLED: _l("cancelled"),
    "stuck": _l("worker gone"),
}
# States from which a message may start the work.
CLAIMABLE = (QUEUED, RETRYING)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)


class Job(db.Model):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_queue_created", "queue", "created_at"),
        Index("ix_jobs_status_lease", "status", "lease_expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(80))
    queue: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    payload_json: Mapped[str] = mapped_column(Text, default="{}")
    result_json: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    error: Mapped[str | None] = mapped_column(Text)
    # The error in one sentence for people (portal/jobs/problems.py); ``error`` is technical.
    problem: Mapped[str | None] = mapped_column(Text)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # When the sweeper last sent the job's message (the send after commit writes nothing: it
    # would need a second connection). Kept for the record; nothing decides by it.
    sent_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    # The claim of a running job is a lease (portal/jobs/leases.py): the worker process that
    # holds it renews ``lease_expires_at`` while the job runs. Once it has expired the worker
    # is taken as gone and the job may be claimed again; every step of the running job is
    # conditional on ``lease_token``, so a slow former holder cannot record over a new claim.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_expires_at: Mapped[datetime | None]

    def lease_expired(self, now: datetime | None = None) -> bool:
        """Running, and its worker stopped renewing the claim: the worker is gone."""
        return (
            self.status == RUNNING
            and self.lease_expires_at is not None
            and self.lease_expires_at < (now or utcnow())
        )

    @property
    def worker_gone(self) -> bool:
        return self.lease_expired()

    @property
    def payload(self) -> dict:
        return json.loads(self.payload_json or "{}")

    @property
    def result(self) -> dict | None:
        return None if self.result_json is None else json.loads(self.result_json)

    @property
    def problem_shown(self) -> str:
        """The last error as one sentence for people (never the technical text)."""
        from portal.jobs.problems import shown

        return shown(self.problem, self.error, self.id, self.attempts)

    @property
    def can_retry(self) -> bool:
        return self.status in (FAILED, CANCELLED) or self.worker_gone

    @property
    def can_cancel(self) -> bool:
        """Whether Cancel is offered (the service checks again, in its UPDATE): never for a
        chain job that has run or a transaction's follow-up, whose transaction may be in
        flight."""
        if self.kind == "chain.confirm" or (self.queue == "contracts" and self.attempts):
            return False
        return self.status in (QUEUED, RETRYING) or self.worker_gone


class JobAttempt(db.Model):
    """One try of a job, kept so the detail page can show what happened each time."""

    __tablename__ = "job_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    problem: Mapped[str | None] = mapped_column(Text)

    @property
    def problem_shown(self) -> str:
        from portal.jobs.problems import shown

        return shown(self.problem, self.error, self.job_id, self.number)

"""Operational jobs: the pipeline check staff run from the Jobs page."""

from __future__ import annotations

import platform
import time

from sqlalchemy import func, select

from portal.extensions import db
from portal.jobs.kinds import DIAGNOSTIC
from portal.jobs.models import JobAttempt
from workers.actors import handles


class DiagnosticFailure(RuntimeError):
    """Raised on purpose, to show how a failing job looks and retries."""

    for_people = True  # its message is what the Jobs page shows


@handles(DIAGNOSTIC.name)
def diagnostic(job) -> dict:
    tries = db.session.scalar(select(func.count()).where(JobAttempt.job_id == job.id))
    wanted = job.payload.get("fail_times", 0)
    if tries <= wanted:
        raise DiagnosticFailure(f"Failing on purpose: try {tries} of the {wanted} asked to fail.")
    started = time.perf_counter()
    db.session.execute(select(1))
    return {
        "database_ms": round((time.perf_counter() - started) * 1000, 2),
        "worker": platform.node(),
        "queue_wait_s": round((job.started_at - job.created_at).total_seconds(), 3),
    }

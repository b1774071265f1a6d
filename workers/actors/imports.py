"""Import jobs: the dry run and the commit of a batch."""

from __future__ import annotations

from portal.extensions import db
from portal.imports import fields, kobo, live, parsing, pipeline
from portal.imports.models import ANALYSING, COMMITTING, ImportBatch, ImportSource
from portal.imports.services import record_failure, start_analysis
from portal.jobs.kinds import IMPORT_ANALYSE, IMPORT_COMMIT, KOBO_PULL
from portal.jobs.lifecycle import PermanentJobError
from workers.actors import handles


def _batch(job, expected_status: str) -> ImportBatch:
    batch = db.session.get(ImportBatch, job.payload["batch_id"])
    if batch is None:
        raise PermanentJobError("The import was deleted.")
    if batch.status != expected_status:
        # A retry of work already done (or undone): nothing to do twice.
        raise _AlreadyDone(f"the import is already {batch.status}")
    if batch.job_id != job.id:
        # Started again by another job: that one owns the batch, this one must neither run
        # it a second time nor mark it failed.
        raise _AlreadyDone(f"the import is being handled by job {batch.job_id}")
    return batch


class _AlreadyDone(Exception):
    pass


def _run(job, expected_status: str, work) -> dict:
    try:
        batch = _batch(job, expected_status)
    except _AlreadyDone as done:
        return {"skipped": str(done)}

    def fail(message: str) -> None:
        record_failure(batch.id, message, job.id)

    try:
        outcome = work(batch, live.progress_reporter(batch))
    except parsing.FileRejected as exc:
        fail(str(exc))
        raise PermanentJobError(str(exc)) from exc
    except PermanentJobError as exc:
        fail(str(exc))
        raise
    except Exception:
        if job.attempts >= job.max_attempts:  # the last try: the batch must not stay running
            fail("The import stopped on an unexpected error; see the job for details.")
        raise
    live.announce(batch)
    return outcome


@handles(IMPORT_ANALYSE.name)
def analyse(job) -> dict:
    def work(batch, progress):
        tally = pipeline.analyse(batch, progress)
        return {"rows": tally.total, "new": tally.new, "errors": tally.errors}

    return _run(job, ANALYSING, work)


@handles(IMPORT_COMMIT.name)
def commit(job) -> dict:
    def work(batch, progress):
        return {"imported": pipeline.commit(batch, progress)}

    return _run(job, COMMITTING, work)


@handles(KOBO_PULL.name)
def kobo_pull(job) -> dict:
    """Fetch new submissions into a batch and start its dry run when the columns are matched."""
    source = db.session.get(ImportSource, job.payload["source_id"])
    if source is None:
        raise PermanentJobError("The KoboToolbox source was deleted.")
    try:
        batch = kobo.pull_to_batch(source, job.created_by_id)
    except kobo.KoboError as exc:
        if exc.status == 502 and "could not be reached" in str(exc):
            raise  # the network: worth another try
        raise PermanentJobError(str(exc)) from exc
    if batch is None:
        return {"new_submissions": 0}
    if not fields.check_mapping(batch.mapping, batch.headers):
        start_analysis(batch, job.created_by_id)
    return {"new_submissions": batch.total_rows, "batch_id": batch.id}

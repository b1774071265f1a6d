"""An import batch from upload to commit: store, map, dry run, commit.

The file is kept encrypted (``portal.files.storage``) and read streaming by the dry run (counts,
error report), which keeps the rows it accepted, normalised and encrypted too, for the commit
(``portal.imports.checked``): no pass holds the file in memory. The commit is one transaction:
all rows or none, unless the user chose "valid rows only".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import Select, select
from werkzeug.datastructures import FileStorage

from portal import events, offload
from portal.errors import DomainError, InvalidTransition, NotFound, ValidationFailed
from portal.extensions import db
from portal.files import storage
from portal.files.models import StoredFile
from portal.i18n.formatting import number
from portal.imports import checked, fields, held, live, parsing
from portal.imports.models import (
    ALL_OR_NOTHING,
    ANALYSING,
    COMMITTED,
    COMMITTING,
    DISCARDED,
    FAILED,
    READY,
    UPLOADED,
    VALID_ONLY,
    ImportBatch,
    ImportSource,
)
from portal.jobs import dispatch
from portal.jobs.kinds import IMPORT_ANALYSE, IMPORT_COMMIT
from portal.projects import services as projects
from portal.projects.models import Project
from portal.timeutil import utcnow
from portal.transitions import change, move

EXTENSIONS = {".csv": "csv", ".xlsx": "xlsx"}
PREVIEW_ERRORS = 20
CHANGEABLE = (UPLOADED, READY, FAILED)  # the states in which the mapping and sheet may change
# What a request that lost the race (or came late) is told, by the state it found.
_BUSY = {
    ANALYSING: _l("The dry run of this import is already running."),
    COMMITTING: _l("This import is already being committed."),
    COMMITTED: _l("This import has been committed already."),
    DISCARDED: _l("This import was discarded."),
}


class ImportRejected(DomainError):
    status = 400


def visible(user) -> Select:
    return projects.scope(select(ImportBatch), ImportBatch.project_id, user).order_by(
        ImportBatch.created_at.desc(), ImportBatch.id.desc()
    )


def get_visible(user, batch_id: int) -> ImportBatch:
    batch = db.session.scalar(visible(user).where(ImportBatch.id == batch_id))
    if batch is None:
        raise NotFound(_("No such import."))
    return batch


def visible_sources(user, kind: str | None = None) -> Select:
    """Sources of the projects the user sees: a source belongs to the project it feeds.

    A source without a project (made before sources had one) is seen only by users who see
    every project.
    """
    query = projects.scope(select(ImportSource), ImportSource.project_id, user)
    if kind is not None:
        query = query.where(ImportSource.kind == kind)
    return query.order_by(ImportSource.name)


def sources(user) -> list[ImportSource]:
    return list(db.session.scalars(visible_sources(user)))


def source_named(name: str, *, project: Project, user, kind: str = "file") -> ImportSource:
    """The source with this name, created for ``project`` on first use (its mapping is
    remembered). A name held by a source the user cannot see is refused, not borrowed: the
    source's remembered mapping belongs to another project."""
    name = name.strip()[:120]
    found = db.session.scalar(select(ImportSource).where(ImportSource.name == name))
    if found is None:
        found = ImportSource(name=name, kind=kind, project_id=project.id)
        db.session.add(found)
        db.session.flush()
        return found
    seen = db.session.scalar(visible_sources(user).where(ImportSource.id == found.id))
    if seen is None:
        raise ValidationFailed({"source": _("This name is taken; choose another source name.")})
    return found


def create_batch(
    upload: FileStorage | None,
    *,
    project: Project,
    user,
    group=None,
    source: ImportSource | None = None,
    kept: StoredFile | None = None,
) -> ImportBatch:
    """Store the upload encrypted (or take over ``kept``, an upload held while the form was
    corrected: ``portal.imports.held``), read its headers, and propose a mapping."""
    projects.ensure_writable(project)
    filename = Path(kept.filename if kept is not None else upload.filename or "").name
    kind = EXTENSIONS.get(Path(filename).suffix.lower())
    if kind is None:
        raise ImportRejected(_("Upload a .csv or .xlsx file (use the template)."))
    if kept is not None:
        stored = held.adopt(kept)
        stored.project_id = project.id
    else:
        try:
            stored = storage.store(
                upload.stream,
                kind="import",
                filename=filename,
                content_type=upload.mimetype or "application/octet-stream",
                created_by_id=user.id,
                project_id=project.id,
                max_bytes=current_app.config["IMPORT_MAX_BYTES"],
            )
        except ValueError as exc:
            raise ImportRejected(f"This file is too large: {exc}.") from None
    message = ""
    try:
        headers, sheet, sheets = _read_headers(stored, filename, None)
    except ImportRejected as exc:
        # A workbook whose first sheet is not the table (instructions, a cover page): kept, so
        # the person can choose the sheet; that sheet's own problems come when it is read.
        sheets, first = _sheet_names(stored, filename)
        if len(sheets) < 2:
            storage.delete(stored)
            raise
        headers, sheet = [], None
        message = (
            f"The sheet “{first}” is not a table to import: {exc} "
            "Choose the sheet that holds the table of people."
        )
    batch = ImportBatch(
        source_id=source.id if source else None,
        project_id=project.id,
        group_id=group.id if group else None,
        created_by_id=user.id,
        file_id=stored.id,
        filename=filename,
        kind=kind,
        sheet=sheet,
        sheets_json=json.dumps(sheets),
        status=UPLOADED,
        headers_json=json.dumps(headers),
        mapping_json=json.dumps(_proposed_mapping(source, headers)),
        message=message,
    )
    db.session.add(batch)
    db.session.flush()
    return batch


def _read_headers(stored, filename: str, sheet: str | None) -> tuple[list[str], str | None, list]:
    try:
        with storage.plain_copy(stored) as path:
            # Unzipping and parsing a workbook in a request: off gevent's loop (portal.offload).
            return offload.run(_headers_of, path, filename, sheet)
    except parsing.FileRejected as exc:
        raise ImportRejected(str(exc)) from None


def _headers_of(path, filename: str, sheet: str | None) -> tuple[list[str], str | None, list]:
    with parsing.open_table(path, filename, sheet=sheet) as table:
        if not table.has_rows:
            raise ImportRejected(
                "The file has column headers but no rows under them"
                + (f" on the sheet “{table.sheet}”." if table.sheet else ".")
            )
        return list(table.headers), table.sheet, list(table.sheets)


def _sheet_names(stored, filename: str) -> tuple[list[str], str | None]:
    with storage.plain_copy(stored) as path:
        return offload.run(parsing.sheet_names, path, filename)


def _proposed_mapping(source: ImportSource | None, headers: list[str]) -> dict[str, str]:
    remembered = {h: f for h, f in (source.mapping if source else {}).items() if h in headers}
    return remembered or fields.guess_mapping(headers)


def _refusal(otherwise: str):
    """The message for a state change refused in the state found (``move``'s ``refused``)."""
    return lambda found: str(_BUSY.get(found, otherwise))


def choose_sheet(batch: ImportBatch, sheet: str) -> None:
    """Read another sheet of the workbook; the mapping is proposed afresh for its columns."""
    if sheet not in batch.sheets:
        raise ImportRejected(_("The workbook has no sheet with that name."))
    stored = db.session.get(storage.StoredFile, batch.file_id or "")
    if stored is None:
        raise ImportRejected(_("The uploaded file is gone; upload it again."))
    # First the state (this also holds the row until the request ends), then the reading.
    move(batch, CHANGEABLE, UPLOADED, _refusal(_("This import can no longer be changed.")))
    headers, batch.sheet, _sheets = _read_headers(stored, batch.filename, sheet)
    source = db.session.get(ImportSource, batch.source_id) if batch.source_id else None
    batch.headers_json = json.dumps(headers)
    batch.mapping_json = json.dumps(_proposed_mapping(source, headers))
    batch.message = ""
    checked.drop(batch)  # another sheet: the rows checked before are not this import's
    db.session.flush()


def set_mapping(batch: ImportBatch, mapping: dict[str, str]) -> list[str]:
    """Save the mapping (and remember it on the source); returns problems, empty when fine."""
    if batch.status not in CHANGEABLE:
        raise InvalidTransition(
            str(_BUSY.get(batch.status, _("This import can no longer be changed.")))
        )
    mapping = {h: f for h, f in mapping.items() if f}
    problems = fields.check_mapping(mapping, batch.headers)
    if problems:
        return problems
    move(batch, CHANGEABLE, UPLOADED, _refusal(_("This import can no longer be changed.")))
    batch.mapping_json = json.dumps(mapping)
    if batch.source_id:
        db.session.get(ImportSource, batch.source_id).mapping_json = json.dumps(mapping)
    checked.drop(batch)  # read with the old mapping
    db.session.flush()
    return []


def start_analysis(batch: ImportBatch, created_by_id: int | None):
    if fields.check_mapping(batch.mapping, batch.headers):
        raise InvalidTransition(_("Map the columns first."))
    # One statement checks and sets: of two requests at once, one starts the dry run.
    move(
        batch,
        CHANGEABLE,
        ANALYSING,
        _refusal(_("This import is already running or finished.")),
        message="",
    )
    job = dispatch.enqueue(
        IMPORT_ANALYSE.name,
        {"batch_id": batch.id},
        project_id=batch.project_id,
        created_by_id=created_by_id,
    )
    batch.job_id = job.id
    db.session.flush()
    return job


def start_commit(batch: ImportBatch, user, mode: str):
    """Queue the commit: one job for one import, whoever else clicks at the same moment."""
    not_ready = _refusal(_("Run the dry run first; only a checked import can be committed."))
    if batch.status != READY:
        raise InvalidTransition(not_ready(batch.status))
    if mode not in (ALL_OR_NOTHING, VALID_ONLY):
        raise InvalidTransition(_("Choose how to import."))
    problems = batch.invalid_rows + batch.duplicate_rows
    if mode == ALL_OR_NOTHING and problems:
        raise InvalidTransition(
            ngettext(
                "%(count)s row has problems. Fix it and upload the file again, "
                "or choose to import only the valid rows.",
                "%(count)s rows have problems. Fix them and upload the file again, "
                "or choose to import only the valid rows.",
                problems,
                count=number(problems),
            )
        )
    if batch.new_rows == 0:
        raise InvalidTransition(_("There is nobody new to import in this file."))
    projects.ensure_writable(db.session.get(Project, batch.project_id))
    # The status read above may be stale: the UPDATE ... WHERE status = 'ready' decides.
    move(batch, (READY,), COMMITTING, not_ready, mode=mode, message="")
    job = dispatch.enqueue(
        IMPORT_COMMIT.name,
        {"batch_id": batch.id},
        project_id=batch.project_id,
        created_by_id=user.id,
    )
    batch.job_id = job.id
    db.session.flush()
    return job


def discard(batch: ImportBatch) -> None:
    """Drop a batch that will not be committed, and its files (they hold personal data)."""
    # The state first: the files must not go while a dry run or commit that has just started
    # reads them. Discarding twice is harmless (the second finds nothing to delete).
    move(
        batch,
        (*CHANGEABLE, DISCARDED),
        DISCARDED,
        _refusal(_("A running or committed import cannot be discarded.")),
    )
    _drop_files(batch)
    db.session.flush()


def _drop_files(batch: ImportBatch) -> None:
    for attr in ("file_id", "errors_file_id"):
        file_id = getattr(batch, attr)
        stored = db.session.get(storage.StoredFile, file_id) if file_id else None
        setattr(batch, attr, None)
        if stored is not None:
            storage.delete(stored)
    checked.drop(batch)


@dataclass
class Tally:
    total: int = 0
    new: int = 0
    duplicates: int = 0
    invalid: int = 0
    errors: int = 0
    preview: list[dict] = field(default_factory=list)

    def error(
        self,
        row: int,
        field_name: str,
        message: str,
        match: str | None = None,
        code: str = "",
        values: dict | None = None,
    ) -> dict:
        """``match``: for a row refused as already enrolled, the blind index it shares with
        that person (kept in the preview only, so the page can link to them). ``code`` and
        ``values``: the problem as ``problems.sentence`` writes it in the reader's language
        (``message`` is the English, for the report file)."""
        entry = {"row": row, "field": field_name, "message": message}
        self.errors += 1
        if len(self.preview) < PREVIEW_ERRORS:
            kept = {**entry, "match": match} if match else dict(entry)
            if code:
                kept["code"] = code
                if values:
                    kept["values"] = values
            self.preview.append(kept)
        return entry

    def problem(self, error) -> dict:
        """``error`` as ``error`` takes it: a ``validation.RowError``."""
        return self.error(
            error.row, error.field, error.message, code=error.code, values=error.values
        )


def record_analysis(batch: ImportBatch, tally: Tally, errors_file) -> None:
    batch.total_rows = tally.total
    batch.new_rows = tally.new
    batch.duplicate_rows = tally.duplicates
    batch.invalid_rows = tally.invalid
    batch.error_count = tally.errors
    batch.errors_preview_json = json.dumps(sorted(tally.preview, key=lambda e: e["row"]))
    if batch.errors_file_id:
        old = db.session.get(storage.StoredFile, batch.errors_file_id)
        if old is not None:
            storage.delete(old)
    batch.errors_file_id = errors_file.id if errors_file else None
    # Never over a commit or a discard that came in meanwhile.
    move(
        batch,
        (*CHANGEABLE, ANALYSING),
        READY,
        _refusal("This import is no longer being checked."),
    )


def record_commit(batch: ImportBatch, imported: int) -> None:
    batch.imported_rows = imported
    move(
        batch,
        (COMMITTING,),
        COMMITTED,
        _refusal("This import is no longer being committed."),
        committed_at=utcnow(),
    )
    # The rows are in the database now; the upload and the checked rows (personal data) have
    # no reason to stay.
    stored = db.session.get(storage.StoredFile, batch.file_id) if batch.file_id else None
    batch.file_id = None
    if stored is not None:
        storage.delete(stored)
    checked.drop(batch)
    db.session.flush()
    events.import_changed.send(
        batch,
        action="import.committed",
        summary=f"Import {batch.id}: {imported} beneficiaries added to project {batch.project_id}",
        project_id=batch.project_id,
        data={
            "rows": batch.total_rows,
            "imported": imported,
            "skipped_invalid": batch.invalid_rows,
            "skipped_duplicates": batch.duplicate_rows,
            "mode": batch.mode,
            "group_id": batch.group_id,
        },
    )


def record_failure(batch_id: int, message: str, job_id: int | None = None) -> bool:
    """In its own transaction: the failed work was rolled back, the reason must stay.

    Only a batch still running (and, given ``job_id``, run by that job) is marked failed: a run
    that lost to another one must not overwrite the other's success. True if it was marked.
    """
    db.session.rollback()
    where = () if job_id is None else (ImportBatch.job_id == job_id,)
    if not change(
        ImportBatch, batch_id, (ANALYSING, COMMITTING), FAILED, where=where, message=message[:2000]
    ):
        db.session.rollback()
        return False
    batch = db.session.get(ImportBatch, batch_id, populate_existing=True)
    live.announce(batch)
    db.session.commit()
    return True

"""The two streaming passes of an import: the dry run and the commit.

The dry run reads the stored upload row by row: it validates, de-duplicates inside the file and
against the database (through the blind indexes, 1,000 rows per query), writes the error report,
and keeps the rows it accepted, normalised, for the commit (``portal.imports.checked``): the
file is parsed and validated once. The commit reads those rows back, checks them against the
database again (people may have been enrolled since: on PostgreSQL first through the unique
indexes as it inserts, see ``_copy_in``) and inserts them in the job's single transaction: all
or nothing, unless the user chose "valid rows only". On PostgreSQL it inserts by COPY, and
prepares the next chunk (ids, encryption, COPY text) in a thread while the database writes the
last one (``portal.imports.bulk``, ``portal.imports.ahead``). A batch whose checked rows are
missing (dry run from before they were kept) is read from the upload and validated again.
"""

from __future__ import annotations

import csv
import io
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import NamedTuple

from sqlalchemy import insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import db_pool
from portal.beneficiaries import name_search
from portal.beneficiaries.models import (
    ACTIVE,
    Beneficiary,
    BeneficiaryNameIndex,
    BeneficiaryPII,
    GroupMember,
    ProjectBeneficiary,
)
from portal.beneficiaries.services import new_ref
from portal.extensions import db
from portal.files import storage
from portal.imports import bulk, checked, dedup, parsing, problems, validation
from portal.imports.ahead import Ahead
from portal.imports.models import ALL_OR_NOTHING, KOBO, ImportBatch, KoboSubmission
from portal.imports.services import Tally, record_analysis, record_commit
from portal.jobs.lifecycle import PermanentJobError
from portal.settings.services import default_country
from portal.timeutil import utcnow
from portal.transitions import dialect_insert

# Rows per database duplicate check in the dry run. The error report lists these duplicates
# when their chunk is checked, so the order of its lines (and which errors the preview shows
# first) depends on this number: keep it.
CHUNK = 1000
# Rows per COPY round at commit: big enough that each statement's overhead is small, small
# enough that a round's work overlaps the next one's preparation well (and memory stays flat).
COMMIT_CHUNK = 5000
UUID = "_uuid"  # the submission id column of a pulled Kobo batch (portal.imports.kobo)
Progress = Callable[[str, int, int], None]  # phase, rows done, rows expected (0: unknown)
PHONE_ENROLLED = problems.english("phone_enrolled")
NATIONAL_ID_ENROLLED = problems.english("national_id_enrolled")


@contextmanager
def _table(batch: ImportBatch) -> Iterator[tuple[parsing.Table, validation.RowValidator]]:
    stored = db.session.get(storage.StoredFile, batch.file_id) if batch.file_id else None
    if stored is None:
        raise PermanentJobError("The uploaded file is gone; upload it again.")
    with (
        storage.plain_copy(stored) as path,
        parsing.open_table(path, batch.filename, sheet=batch.sheet) as table,
    ):
        validator = validation.RowValidator(batch.mapping, table.headers, default_country())
        yield table, validator


def _not_enrolled(
    executor: Session | Connection, rows: list[validation.ValidRow], tally: Tally, on_error
) -> list[bool]:
    """For each row, whether nobody enrolled has its phone or national ID (counted, and the
    others reported through ``on_error``)."""
    phones, ids = dedup.existing_in_db(
        executor,
        {r.phone_index for r in rows},
        {r.national_id_index for r in rows if r.national_id_index},
    )
    fresh = []
    for row in rows:
        if row.phone_index in phones:
            tally.duplicates += 1
            on_error(
                tally.error(
                    row.row, "phone", PHONE_ENROLLED, match=row.phone_index, code="phone_enrolled"
                )
            )
            fresh.append(False)
        elif row.national_id_index and row.national_id_index in ids:
            tally.duplicates += 1
            on_error(
                tally.error(
                    row.row,
                    "national_id",
                    NATIONAL_ID_ENROLLED,
                    match=row.national_id_index,
                    code="national_id_enrolled",
                )
            )
            fresh.append(False)
        else:
            tally.new += 1
            fresh.append(True)
    return fresh


def _validated(validator, in_file, tally: Tally, on_error, row_number: int, cells: list):
    """The row checked and normalised, or None (counted, reported through ``on_error``)."""
    tally.total += 1
    result = validator.validate(row_number, cells)
    if isinstance(result, list):
        tally.invalid += 1
        for problem in result:
            on_error(tally.problem(problem))
        return None
    clash = in_file.check(result)
    if clash is not None:
        tally.duplicates += 1
        on_error(tally.problem(clash))
        return None
    return result


class _Checker:
    """Validation plus both kinds of de-duplication, one row at a time, DB lookups in chunks.

    Each row that passes validation and the in-file check goes to ``keep`` once its chunk has
    been checked against the database, with whether somebody enrolled already has it.
    """

    def __init__(self, validator: validation.RowValidator, tally: Tally, on_error, keep):
        self.validator = validator
        self.tally = tally
        self.on_error = on_error
        self.keep = keep
        self.in_file = dedup.InFileDeduper()
        self.pending: list[tuple[int, str, validation.ValidRow]] = []

    def feed(self, row_number: int, cells: list, uuid: str = "") -> None:
        result = _validated(
            self.validator, self.in_file, self.tally, self.on_error, row_number, cells
        )
        if result is None:
            return
        self.pending.append((self.tally.total, uuid, result))
        if len(self.pending) >= CHUNK:
            self.drain()

    def drain(self) -> None:
        pending, self.pending = self.pending, []
        if pending:
            rows = [row for _, _, row in pending]
            fresh = _not_enrolled(db.session, rows, self.tally, self.on_error)
            for (ordinal, uuid, row), new in zip(pending, fresh, strict=True):
                self.keep(ordinal, row, uuid, not new)


class _Throttle:
    """Report at most every quarter second: a million rows must not mean a million emits."""

    def __init__(self, progress: Progress, every: float = 0.25):
        self.progress, self.every, self.last = progress, every, 0.0

    def __call__(self, phase: str, done: int, total: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.every:
            self.last = now
            self.progress(phase, done, total)


def _uuid_column(batch: ImportBatch, headers: list[str]) -> int | None:
    return headers.index(UUID) if batch.kind == KOBO and UUID in headers else None


def _uuid(cells: list, column: int | None) -> str:
    return str(cells[column]) if column is not None and column < len(cells) else ""


def analyse(batch: ImportBatch, progress: Progress) -> Tally:
    """The dry run: counts, the first errors, a full error report (row, field, message), and
    the accepted rows kept for the commit."""
    tally = Tally()
    report = _Throttle(progress)
    checked.drop(batch)  # an earlier dry run's
    with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024, mode="w+b") as raw:
        # The report names rows, fields and what is wrong, never a value: no personal data.
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(["row", "field", "message"])

        def on_error(entry: dict) -> None:
            writer.writerow([entry["row"], entry["field"], entry["message"]])

        with _table(batch) as (table, validator):
            keep = checked.Writer()
            checker = _Checker(validator, tally, on_error, keep.add)
            uuids = _uuid_column(batch, table.headers)

            def accepted() -> Iterator[bytes]:
                for row_number, cells in table.rows():
                    checker.feed(row_number, cells, _uuid(cells, uuids))
                    if keep.buffered >= checked.FLUSH_BYTES:
                        yield keep.take()
                    report("checking", tally.total, 0)
                checker.drain()
                yield keep.take()

            kept = storage.store(
                checked.ChunkStream(accepted()),
                kind=checked.KIND,
                filename=checked.filename(batch),
                content_type="text/tab-separated-values",
                created_by_id=batch.created_by_id,
                project_id=batch.project_id,
            )
            if keep.rows == 0:
                storage.delete(kept)
        text.flush()
        errors_file = None
        if tally.errors:
            raw.seek(0)
            errors_file = storage.store(
                raw,
                kind="import-errors",
                filename=f"import-{batch.id}-errors.csv",
                content_type="text/csv",
                created_by_id=batch.created_by_id,
                project_id=batch.project_id,
            )
        text.detach()
    report("checked", tally.total, tally.total, force=True)
    record_analysis(batch, tally, errors_file)
    return tally


class _Candidate(NamedTuple):
    """A row to insert at commit: its ordinal among the file's rows, Kobo uuid, whether the dry
    run found it enrolled already, and its values."""

    ordinal: int
    uuid: str
    enrolled: bool
    row: validation.ValidRow


def commit(batch: ImportBatch, progress: Progress) -> int:
    """Insert the new rows; in all-or-nothing mode any problem found now undoes everything."""
    report = _Throttle(progress)
    strict = batch.mode == ALL_OR_NOTHING

    def on_error(entry: dict) -> None:
        if strict:
            raise PermanentJobError(
                f"Row {entry['row']} ({entry['field']}): {entry['message']} Nothing was imported;"
                " the file or the database changed since the dry run. Run the dry run again."
            )

    db.session.flush()  # as the ORM INSERTs did: pending rows first (a new group, a receipt)
    imported = _copy_in(batch, report, on_error) if _copies() else _insert(batch, report, on_error)
    report("saved", batch.total_rows, batch.total_rows, force=True)
    record_commit(batch, imported)
    return imported


def _copy_in(batch: ImportBatch, report: _Throttle, on_error) -> int:
    """COPY the rows, trusting the dry run first, under a savepoint.

    Only the rows the dry run found enrolled are looked up again; for all the others the
    database's unique indexes on the blind indexes (the very values the lookup compares) check,
    as part of the insert, that nobody has enrolled them since. If they find somebody (or a
    random reference clashes, or anything else breaks a constraint), the savepoint undoes the
    pass, and a second one checks every row before inserting it, as the dry run did: the right
    rows are skipped, or the right row is named. The lookups cost the database as much as a
    third of the inserts (200,000 index searches for 100,000 people), for a case that is rare.
    """
    if checked.find(batch) is not None:
        try:
            with db.session.begin_nested():
                return _copy_pass(batch, report, on_error, check_all=False)
        except IntegrityError:
            pass  # enrolled since the dry run: check every row this time
    return _copy_pass(batch, report, on_error, check_all=True)


def _copy_pass(batch: ImportBatch, report: _Throttle, on_error, check_all: bool) -> int:
    tally = Tally()
    imported = 0
    receipts = _KoboReceipts(batch)
    writer = bulk.CopyWriter(batch.project_id, batch.group_id, utcnow())
    with _candidates(batch, tally, on_error) as candidates, db_pool.spare() as spare:
        chunks = _chunks(candidates, COMMIT_CHUNK)
        if spare:
            # The process's one spare connection: the next chunks are looked up while this
            # one is written.
            engine = db.engine
            opened = lambda: _autocommit(engine)  # noqa: E731  (opened in the read-ahead thread)
            ready = _prepared(chunks, writer, opened, tally, on_error, check_all)
            steps = Ahead(ready, depth=2, name=f"import-{batch.id}")
        else:
            # Another import holds the spare: one after the other, on the job's own
            # connection, rather than wait for a second one while holding the first.
            own = db.session.connection()
            steps = nullcontext(
                _prepared(chunks, writer, lambda: nullcontext(own), tally, on_error, check_all)
            )
        with steps as ahead:
            for done, fresh, prepared in ahead:
                ids = writer.write(db.session.connection(), prepared)
                imported += receipts.record(fresh, ids)
                report("saving", done, batch.total_rows)
    return imported


def _autocommit(engine):
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def _insert(batch: ImportBatch, report: _Throttle, on_error) -> int:
    """Without COPY: every row checked against the database, then INSERTs, chunk by chunk."""
    tally = Tally()
    imported = 0
    receipts = _KoboReceipts(batch)
    with _candidates(batch, tally, on_error) as candidates:
        for chunk in _chunks(candidates, COMMIT_CHUNK):
            flags = _not_enrolled(db.session, [c.row for c in chunk], tally, on_error)
            fresh = [c for c, ok in zip(chunk, flags, strict=True) if ok]
            ids = insert_rows(batch.project_id, batch.group_id, [c.row for c in fresh])
            imported += receipts.record(fresh, ids)
            report("saving", chunk[-1].ordinal, batch.total_rows)
    return imported


@contextmanager
def _candidates(batch: ImportBatch, tally: Tally, on_error) -> Iterator[Iterator[_Candidate]]:
    """The rows the dry run kept; or, when it kept none on record, the upload validated again
    (then every row counts as possibly enrolled: the database is asked about each)."""
    stored = checked.find(batch)
    if stored is not None:
        yield (_Candidate(*found) for found in checked.read(stored))
        return
    with _table(batch) as (table, validator):
        yield _revalidated(batch, table, validator, tally, on_error)


def _revalidated(batch, table, validator, tally: Tally, on_error) -> Iterator[_Candidate]:
    uuids = _uuid_column(batch, table.headers)
    in_file = dedup.InFileDeduper()
    for row_number, cells in table.rows():
        result = _validated(validator, in_file, tally, on_error, row_number, cells)
        if result is not None:
            yield _Candidate(tally.total, _uuid(cells, uuids), True, result)


def _chunks(candidates: Iterator[_Candidate], size: int) -> Iterator[list[_Candidate]]:
    chunk: list[_Candidate] = []
    for candidate in candidates:
        chunk.append(candidate)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _prepared(chunks, writer: bulk.CopyWriter, opened, tally: Tally, on_error, check_all: bool):
    """Each chunk looked up in the database (all its rows, or those the dry run found enrolled)
    and made ready to COPY. In a thread, on the spare connection ``opened()``: it reads committed
    rows and draws ids, and neither needs the import's transaction (the rows of earlier chunks,
    not committed yet, cannot be duplicates of later ones: the dry run checked the file). Or
    inline on the job's own connection, where those reads and draws are just as right."""
    with opened() as connection:
        for chunk in chunks:
            asked = chunk if check_all else [c for c in chunk if c.enrolled]
            refused: set[int] = set()
            if asked:
                flags = _not_enrolled(connection, [c.row for c in asked], tally, on_error)
                refused = {c.ordinal for c, ok in zip(asked, flags, strict=True) if not ok}
            fresh = [c for c in chunk if c.ordinal not in refused]
            yield chunk[-1].ordinal, fresh, writer.prepare(connection, [c.row for c in fresh])


class _KoboReceipts:
    """For a pulled Kobo batch: remember each imported row's submission uuid, so that neither
    the webhook nor the next pull imports that submission again."""

    def __init__(self, batch: ImportBatch):
        self.source_id = batch.source_id
        self.active = batch.kind == KOBO and UUID in batch.headers

    def record(self, rows: list[_Candidate], ids: list[int]) -> int:
        if self.active and rows:
            # A webhook delivery of the same submission may have left its receipt meanwhile:
            # that one stays, and the commit goes on.
            db.session.execute(
                dialect_insert(KoboSubmission).on_conflict_do_nothing(),
                [
                    {
                        "source_id": self.source_id,
                        "uuid": candidate.uuid,
                        "beneficiary_id": pk,
                        "outcome": "imported",
                        "message": "",
                        "received_at": utcnow(),
                    }
                    for candidate, pk in zip(rows, ids, strict=True)
                ],
            )
        return len(ids)


def insert_rows(
    project_id: int, group_id: int | None, rows: list[validation.ValidRow]
) -> list[int]:
    """Insert checked rows into a project (and group); returns the new ids in order.

    For the Kobo webhook's single rows, seeding, and the commit on databases without COPY (a
    commit on PostgreSQL goes through ``portal.imports.bulk``). The values go through each
    column's type (``Encrypted`` encrypts), whichever way they are sent: on PostgreSQL with
    psycopg, COPY (ids drawn from the table's sequence first); elsewhere, INSERTs.
    """
    if not rows:
        return []
    db.session.flush()  # as the ORM INSERTs did: pending rows first (a new group, a receipt)
    now = utcnow()
    people = [
        {
            "ref": new_ref(),
            "status": ACTIVE,
            "gender": row.gender or "",
            "language": row.language or "en",
            "consent_at": now if row.consent else None,
            "retention_until": row.retention_until,
            "created_at": now,
            "updated_at": now,
        }
        for row in rows
    ]
    table = Beneficiary.__table__
    if _copies():
        ids = _next_ids(table, len(people))
        for pk, person in zip(ids, people, strict=True):
            person["id"] = pk
        _bulk(table, people)
    else:
        ids = db.session.scalars(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), people
        ).all()
    _bulk(
        BeneficiaryPII.__table__,
        [
            {
                "beneficiary_id": pk,
                "name": row.name,
                "phone": row.phone,
                "national_id": row.national_id,
                "date_of_birth": row.date_of_birth,
                "location": row.location,
                "phone_index": row.phone_index,
                "national_id_index": row.national_id_index,
            }
            for pk, row in zip(ids, rows, strict=True)
        ],
    )
    _bulk(
        ProjectBeneficiary.__table__,
        [{"project_id": project_id, "beneficiary_id": pk, "added_at": now} for pk in ids],
    )
    if group_id:
        _bulk(GroupMember.__table__, [{"group_id": group_id, "beneficiary_id": pk} for pk in ids])
    _bulk(
        BeneficiaryNameIndex.__table__,
        [
            name_search.row_for(pk, row.name, row.location)
            for pk, row in zip(ids, rows, strict=True)
        ],
    )
    return list(ids)


def _copies() -> bool:
    """True when the session's connection is PostgreSQL through psycopg (3), which has COPY."""
    connection = db.session.connection()
    return connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg"


def _next_ids(table, count: int) -> list[int]:
    draw = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")
    return list(db.session.scalars(draw, {"table": table.name, "n": count}))


def _bulk(table, records: list[dict]) -> None:
    """INSERT ``records`` (dicts with the same keys) into ``table`` in the session's transaction."""
    if not records:
        return
    if not _copies():
        db.session.execute(insert(table), records)
        return
    connection = db.session.connection()
    dialect = connection.dialect
    names = list(records[0])
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    quote = dialect.identifier_preparer
    statement = (
        f"COPY {quote.format_table(table)} ({', '.join(quote.quote(n) for n in names)}) FROM STDIN"
    )
    driver = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for record in records:
                copy.write_row(
                    [
                        record[name] if process is None else process(record[name])
                        for name, process in zip(names, processors, strict=True)
                    ]
                )
    except driver.IntegrityError as exc:  # as from an INSERT: callers catch SQLAlchemy's
        raise IntegrityError(statement, None, exc) from exc

"""The two streaming passes over an import file: the dry run and the commit.

Both read the stored file row by row, validate, and de-duplicate inside the file and against the
database (through the blind indexes, 1,000 rows per query). The commit inserts in chunks with
bulk statements inside the job's single transaction.
"""

from __future__ import annotations

import csv
import io
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from portal.beneficiaries.models import (
    ACTIVE,
    Beneficiary,
    BeneficiaryPII,
    GroupMember,
    ProjectBeneficiary,
)
from portal.beneficiaries.services import new_ref
from portal.extensions import db
from portal.files import storage
from portal.imports import dedup, parsing, validation
from portal.imports.models import ALL_OR_NOTHING, KOBO, ImportBatch, KoboSubmission
from portal.imports.services import Tally, record_analysis, record_commit
from portal.jobs.lifecycle import PermanentJobError
from portal.settings.services import default_country
from portal.timeutil import utcnow

CHUNK = 1000
UUID = "_uuid"  # the submission id column of a pulled Kobo batch (portal.imports.kobo)
Progress = Callable[[str, int, int], None]  # phase, rows done, rows expected (0: unknown)


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


class _Checker:
    """Validation plus both kinds of de-duplication, one row at a time, DB lookups in chunks."""

    def __init__(self, validator: validation.RowValidator, tally: Tally, on_error):
        self.validator = validator
        self.tally = tally
        self.on_error = on_error
        self.in_file = dedup.InFileDeduper()
        self.pending: list[validation.ValidRow] = []

    def feed(self, row_number: int, cells: list) -> list[validation.ValidRow]:
        """Check one row; returns rows now known to be new (in chunks), else []."""
        self.tally.total += 1
        result = self.validator.validate(row_number, cells)
        if isinstance(result, list):
            self.tally.invalid += 1
            for problem in result:
                self.on_error(self.tally.error(problem.row, problem.field, problem.message))
            return []
        clash = self.in_file.check(result)
        if clash is not None:
            self.tally.duplicates += 1
            self.on_error(self.tally.error(row_number, clash.field, clash.message))
            return []
        self.pending.append(result)
        return self.drain() if len(self.pending) >= CHUNK else []

    def drain(self) -> list[validation.ValidRow]:
        rows, self.pending = self.pending, []
        if not rows:
            return []
        phones, ids = dedup.existing_in_db(
            db.session,
            {r.phone_index for r in rows},
            {r.national_id_index for r in rows if r.national_id_index},
        )
        fresh = []
        for row in rows:
            if row.phone_index in phones:
                self.tally.duplicates += 1
                message = "A beneficiary with this phone number is already enrolled."
                self.on_error(self.tally.error(row.row, "phone", message))
            elif row.national_id_index and row.national_id_index in ids:
                self.tally.duplicates += 1
                message = "A beneficiary with this national ID is already enrolled."
                self.on_error(self.tally.error(row.row, "national_id", message))
            else:
                self.tally.new += 1
                fresh.append(row)
        return fresh


class _Throttle:
    """Report at most every quarter second: a million rows must not mean a million emits."""

    def __init__(self, progress: Progress, every: float = 0.25):
        self.progress, self.every, self.last = progress, every, 0.0

    def __call__(self, phase: str, done: int, total: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.every:
            self.last = now
            self.progress(phase, done, total)


def analyse(batch: ImportBatch, progress: Progress) -> Tally:
    """The dry run: counts, the first errors, and a full error report (row, field, message)."""
    tally = Tally()
    report = _Throttle(progress)
    with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024, mode="w+b") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(["row", "field", "message"])

        def on_error(entry: dict) -> None:
            writer.writerow([entry["row"], entry["field"], entry["message"]])

        with _table(batch) as (table, validator):
            checker = _Checker(validator, tally, on_error)
            for row_number, cells in table.rows():
                checker.feed(row_number, cells)
                report("checking", tally.total, 0)
            checker.drain()
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


def commit(batch: ImportBatch, progress: Progress) -> int:
    """Insert the new rows; in all-or-nothing mode any problem found now undoes everything."""
    tally = Tally()
    report = _Throttle(progress)
    strict = batch.mode == ALL_OR_NOTHING

    def on_error(entry: dict) -> None:
        if strict:
            raise PermanentJobError(
                f"Row {entry['row']} ({entry['field']}): {entry['message']} Nothing was imported;"
                " the file or the database changed since the dry run. Run the dry run again."
            )

    imported = 0
    expected = batch.total_rows
    with _table(batch) as (table, validator):
        receipts = _KoboReceipts(batch, table.headers)
        checker = _Checker(validator, tally, on_error)
        for row_number, cells in table.rows():
            receipts.note(row_number, cells)
            fresh = checker.feed(row_number, cells)
            if fresh:
                imported += receipts.record(fresh, _insert(batch, fresh))
            report("saving", tally.total, expected)
        fresh = checker.drain()
        imported += receipts.record(fresh, _insert(batch, fresh))
    report("saved", tally.total, expected, force=True)
    record_commit(batch, imported)
    return imported


def _insert(batch: ImportBatch, rows: list[validation.ValidRow]) -> list[int]:
    return insert_rows(batch.project_id, batch.group_id, rows)


class _KoboReceipts:
    """For a pulled Kobo batch: remember each imported row's submission uuid, so that neither
    the webhook nor the next pull imports that submission again."""

    def __init__(self, batch: ImportBatch, headers: list[str]):
        self.source_id = batch.source_id
        self.column = headers.index(UUID) if batch.kind == KOBO and UUID in headers else None
        self.uuids: dict[int, str] = {}

    def note(self, row_number: int, cells: list) -> None:
        if self.column is not None and self.column < len(cells):
            self.uuids[row_number] = str(cells[self.column])

    def record(self, rows: list[validation.ValidRow], ids: list[int]) -> int:
        if self.column is not None and rows:
            db.session.execute(
                insert(KoboSubmission),
                [
                    {
                        "source_id": self.source_id,
                        "uuid": self.uuids.pop(row.row),
                        "beneficiary_id": pk,
                        "outcome": "imported",
                        "message": "",
                        "received_at": utcnow(),
                    }
                    for row, pk in zip(rows, ids, strict=True)
                ],
            )
        return len(ids)


def insert_rows(
    project_id: int, group_id: int | None, rows: list[validation.ValidRow]
) -> list[int]:
    """Bulk-insert checked rows into a project (and group); returns the new ids in order.

    The values go through each column's type (``Encrypted`` encrypts), whichever way they are
    sent: on PostgreSQL with psycopg, COPY (ids drawn from the table's sequence first), about
    twice as fast as executemany INSERTs for a big import (bench/import.py); elsewhere, INSERTs.
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

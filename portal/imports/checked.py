"""The rows a dry run accepted, kept for the commit: parsing and validating happen once.

The dry run writes every row that passed validation and the in-file duplicate check, already
normalised (E.164 phones, blind indexes, ISO dates), to an encrypted stored file
(``portal.files.storage``: personal data is never on disk in clear). Rows the database already
held at the dry run are kept too: the commit checks every row against the database again, since
people may have been enrolled, or removed, since. The file is found by its kind and name, and is
deleted with the upload once the batch is committed or discarded (or when it expires).

The format is CSV, one row a line: the row's ordinal among the file's data rows (for progress),
the KoboToolbox submission id (empty but for pulled Kobo batches), then the ValidRow fields the
insert uses. An empty value is None for the optional fields: none of them can be "" otherwise
(an empty ID, date or location is None after validation; gender "" stays "", as it is not
optional).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date

from sqlalchemy import select

from portal.extensions import db
from portal.files import storage
from portal.imports.models import ImportBatch
from portal.imports.validation import ValidRow

KIND = "import-checked"
FLUSH_BYTES = 256 * 1024  # what storage seals per chunk


def filename(batch: ImportBatch) -> str:
    return f"import-{batch.id}-checked.csv"


def find(batch: ImportBatch) -> storage.StoredFile | None:
    return db.session.scalar(
        select(storage.StoredFile).where(
            storage.StoredFile.kind == KIND, storage.StoredFile.filename == filename(batch)
        )
    )


def drop(batch: ImportBatch) -> None:
    """Delete the batch's checked rows, if any (they are personal data)."""
    while (stored := find(batch)) is not None:
        storage.delete(stored)


class Writer:
    """Serialises accepted rows; ``take`` hands over what is buffered, as UTF-8 bytes."""

    def __init__(self) -> None:
        self._text = io.StringIO()
        self._csv = csv.writer(self._text, lineterminator="\n")
        self.rows = 0

    def add(self, ordinal: int, row: ValidRow, uuid: str = "") -> None:
        self.rows += 1
        self._csv.writerow(
            (
                ordinal,
                uuid,
                row.row,
                row.name,
                row.phone,
                row.phone_index,
                row.national_id or "",
                row.national_id_index or "",
                row.date_of_birth or "",
                row.location or "",
                row.gender,
                row.language,
                "1" if row.consent else "",
                row.retention_until.isoformat() if row.retention_until else "",
            )
        )

    @property
    def buffered(self) -> int:
        return self._text.tell()

    def take(self) -> bytes:
        data = self._text.getvalue().encode()
        self._text.seek(0)
        self._text.truncate()
        return data


class ChunkStream(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks (what ``storage.store`` reads
    from, and what the CSV reader reads through)."""

    def __init__(self, chunks: Iterable[bytes]):
        super().__init__()
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(target), len(self._pending))
        target[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def read(stored: storage.StoredFile) -> Iterator[tuple[int, str, ValidRow]]:
    """(ordinal, Kobo uuid or "", row) for each stored row, in file order, streaming.

    The file is opened now (in the app context); the rows can be read in another thread.
    """
    chunks = storage.iter_plain(stored)
    return _rows(chunks)


def _rows(chunks: Iterator[bytes]) -> Iterator[tuple[int, str, ValidRow]]:
    text = io.TextIOWrapper(
        io.BufferedReader(ChunkStream(chunks), FLUSH_BYTES), encoding="utf-8", newline=""
    )
    try:
        for fields in csv.reader(text):
            (
                ordinal,
                uuid,
                number,
                name,
                phone,
                phone_index,
                national_id,
                national_id_index,
                date_of_birth,
                location,
                gender,
                language,
                consent,
                retention_until,
            ) = fields
            row = ValidRow(
                row=int(number),
                name=name,
                phone=phone,
                phone_index=phone_index,
                national_id=national_id or None,
                national_id_index=national_id_index or None,
                date_of_birth=date_of_birth or None,
                location=location or None,
                latitude=None,  # already part of the location; the insert does not use them
                longitude=None,
                gender=gender,
                language=language,
                consent=consent == "1",
                retention_until=date.fromisoformat(retention_until) if retention_until else None,
            )
            yield int(ordinal), uuid, row
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # the stored file's handle

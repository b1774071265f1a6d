"""The rows a dry run accepted, kept for the commit: parsing and validating happen once.

The dry run writes every row that passed validation and the in-file duplicate check, already
normalised (E.164 phones, blind indexes, ISO dates), to an encrypted stored file
(``portal.files.storage``: personal data is never on disk in clear). Rows the database already
held at the dry run are kept too: the commit checks every row against the database again, since
people may have been enrolled, or removed, since. The file is found by its kind and name, and is
deleted with the upload once the batch is committed or discarded (or when it expires).

The format is text, one row a line and its values separated by tabs: the row's ordinal among
the file's data rows (for progress), the KoboToolbox submission id (empty but for pulled Kobo
batches), whether the dry run found the person enrolled already, then the ValidRow's fields in
order, as ``str`` writes them. Backslash, tab, newline
and carriage return in a value are written as \\\\, \\t, \\n and \\r (as in PostgreSQL's COPY
text format). An empty value is None for the optional fields: none of them can be "" otherwise
(an empty ID, date or location is None after validation; gender "" stays "", as it is not
optional). Tab-separated rather than CSV because it is about twice as fast to write and read.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from datetime import date

from sqlalchemy import select

from portal.extensions import db
from portal.files import storage
from portal.imports.models import ImportBatch
from portal.imports.validation import ValidRow

KIND = "import-checked"
FLUSH_BYTES = 256 * 1024  # what storage seals per chunk
_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_UNESCAPE = re.compile(r"\\(.)")
_UNESCAPED = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
_TABS = len(ValidRow._fields) + 2  # between the ordinal, uuid, enrolled and the row's fields


def filename(batch: ImportBatch) -> str:
    return f"import-{batch.id}-checked.tsv"


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


def _text(value: str) -> str:
    return value.translate(_ESCAPES) if _SPECIAL.search(value) else value


def _plain(value: str) -> str:
    return _UNESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], value) if "\\" in value else value


def _field(value) -> str:
    return "" if value is None else _text(str(value))


class Writer:
    """Serialises accepted rows; ``take`` hands over what is buffered, as UTF-8 bytes."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self.buffered = 0  # characters
        self.rows = 0

    def add(self, ordinal: int, row: ValidRow, uuid: str = "", enrolled: bool = False) -> None:
        self.rows += 1
        values = (ordinal, uuid, enrolled, *row)
        line = "\t".join(["" if v is None else str(v) for v in values]) + "\n"
        if line.count("\t") != _TABS or line.count("\n") != 1 or "\\" in line or "\r" in line:
            line = "\t".join([_field(v) for v in values]) + "\n"  # a value needs escapes
        self._lines.append(line)
        self.buffered += len(line)

    def take(self) -> bytes:
        data = "".join(self._lines).encode()
        self._lines.clear()
        self.buffered = 0
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


def read(stored: storage.StoredFile) -> Iterator[tuple[int, str, bool, ValidRow]]:
    """(ordinal, Kobo uuid or "", enrolled, row) for each stored row, in file order, streaming.

    The file is opened now (in the app context); the rows can be read in another thread.
    """
    chunks = storage.iter_plain(stored)
    return _rows(chunks)


def _rows(chunks: Iterator[bytes]) -> Iterator[tuple[int, str, bool, ValidRow]]:
    text = io.TextIOWrapper(
        io.BufferedReader(ChunkStream(chunks), FLUSH_BYTES), encoding="utf-8", newline="\n"
    )
    try:
        for line in text:
            (
                ordinal,
                uuid,
                enrolled,
                number,
                name,
                phone,
                phone_index,
                national_id,
                national_id_index,
                date_of_birth,
                location,
                latitude,
                longitude,
                gender,
                language,
                consent,
                retention_until,
            ) = line[:-1].split("\t")
            row = ValidRow(
                row=int(number),
                name=_plain(name),
                phone=_plain(phone),
                phone_index=_plain(phone_index),
                national_id=_plain(national_id) or None,
                national_id_index=_plain(national_id_index) or None,
                date_of_birth=_plain(date_of_birth) or None,
                location=_plain(location) or None,
                latitude=float(latitude) if latitude else None,
                longitude=float(longitude) if longitude else None,
                gender=_plain(gender),
                language=_plain(language),
                consent=consent == "True",
                retention_until=date.fromisoformat(retention_until) if retention_until else None,
            )
            yield int(ordinal), _plain(uuid), enrolled == "True", row
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # the stored file's handle

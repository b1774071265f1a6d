"""Bulk inserts of checked rows on PostgreSQL: COPY payloads prepared apart from the writing.

``CopyWriter.prepare`` does everything that needs no transaction, and may run in another thread
(``portal.imports.ahead``) with its own connection: ids drawn from the beneficiaries' sequence
(sequences are outside transactions: a rolled-back import leaves a gap in the ids, as any
rollback does), the personal data encrypted, and the five tables' rows written out in COPY's
text format. ``CopyWriter.write`` then sends them, in the job's one transaction, on the
session's connection: beneficiaries first, so that the foreign keys of the other tables
find their rows. Every constraint is checked by PostgreSQL as for any insert.

Text format: columns separated by tabs, ``\\N`` for NULL. The values written here cannot hold a
tab, newline or backslash except the short codes (gender, language), which are escaped anyway;
the ciphertexts are base64url and the blind indexes hex.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from portal.beneficiaries import name_search
from portal.beneficiaries.models import ACTIVE
from portal.beneficiaries.services import new_ref
from portal.imports.sealing import Sealer
from portal.imports.validation import ValidRow

NULL = "\\N"
_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

BENEFICIARIES = (
    "COPY beneficiaries (id, ref, status, gender, language, consent_at, retention_until, "
    "created_at, updated_at) FROM STDIN"
)
PII = (
    "COPY beneficiary_pii (beneficiary_id, name, phone, national_id, date_of_birth, location, "
    "phone_index, national_id_index) FROM STDIN"
)
LINKS = "COPY project_beneficiaries (project_id, beneficiary_id, added_at) FROM STDIN"
MEMBERS = "COPY group_members (group_id, beneficiary_id) FROM STDIN"
NAME_INDEX = "COPY beneficiary_name_index (beneficiary_id, terms) FROM STDIN"
_DRAW = text(
    "SELECT nextval(pg_get_serial_sequence('beneficiaries', 'id')) FROM generate_series(1, :n)"
)


def _numbers(values) -> str:
    return ",".join(map(str, sorted(values)))


def _text(value: str) -> str:
    return value.translate(_ESCAPES) if _SPECIAL.search(value) else value


@dataclass
class Prepared:
    """One chunk ready to send: the rows, their new ids, and a payload per table."""

    rows: list[ValidRow]
    ids: list[int]
    payloads: list[tuple[str, bytes]]


class CopyWriter:
    def __init__(self, project_id: int, group_id: int | None, now: datetime):
        self.project_id = project_id
        self.group_id = group_id
        self._now = now.isoformat(sep=" ")
        self._sealer = Sealer()

    def prepare(self, connection: Connection, rows: Sequence[ValidRow]) -> Prepared:
        """The chunk's ids (drawn on ``connection``), ciphertexts and COPY payloads."""
        if not rows:
            return Prepared([], [], [])
        ids = list(connection.scalars(_DRAW, {"n": len(rows)}))
        sealed = self._sealer.seal(
            [
                value
                for row in rows
                for value in (
                    row.name,
                    row.phone,
                    row.national_id,
                    row.date_of_birth,
                    row.location,
                )
            ]
        )
        now = self._now
        people, personal = [], []
        for k, (pk, row) in enumerate(zip(ids, rows, strict=True)):
            retention = row.retention_until.isoformat() if row.retention_until else NULL
            people.append(
                f"{pk}\t{new_ref()}\t{ACTIVE}\t{_text(row.gender)}\t{_text(row.language)}\t"
                f"{now if row.consent else NULL}\t{retention}\t{now}\t{now}\n"
            )
            name, phone, nid, born, place = (v or NULL for v in sealed[5 * k : 5 * k + 5])
            personal.append(
                f"{pk}\t{name}\t{phone}\t{nid}\t{born}\t{place}\t{row.phone_index}\t"
                f"{row.national_id_index or NULL}\n"
            )
        payloads = [
            (BENEFICIARIES, "".join(people).encode()),
            (PII, "".join(personal).encode()),
            (LINKS, "".join(f"{self.project_id}\t{pk}\t{now}\n" for pk in ids).encode()),
        ]
        if self.group_id:
            payloads.append((MEMBERS, "".join(f"{self.group_id}\t{pk}\n" for pk in ids).encode()))
        # Each person's hashes as an array literal, {1,-2,3}: numbers need no quoting.
        terms = "".join(
            f"{pk}\t{{{_numbers(name_search.person_terms(row.name, row.location))}}}\n"
            for pk, row in zip(ids, rows, strict=True)
        )
        payloads.append((NAME_INDEX, terms.encode()))
        return Prepared(list(rows), ids, payloads)

    @staticmethod
    def write(connection: Connection, prepared: Prepared) -> list[int]:
        """COPY the chunk in ``connection``'s transaction; returns the new ids in row order."""
        driver = connection.connection.driver_connection
        for statement, payload in prepared.payloads:
            try:
                with driver.cursor() as cursor, cursor.copy(statement) as copy:
                    copy.write(payload)
            except driver.IntegrityError as exc:  # as from an INSERT: callers catch SQLAlchemy's
                raise IntegrityError(statement, None, exc) from exc
        return prepared.ids

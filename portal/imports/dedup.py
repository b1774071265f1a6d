"""Finding a person twice: earlier in the same file, or already enrolled.

Both go through the blind indexes (``phone:<E.164>`` and ``nid:<ID>``), the same keyed hashes the
enrolment form writes, so an imported person matches one enrolled by hand.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator
from itertools import zip_longest

from sqlalchemy import Text, any_, bindparam, cast, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from portal.beneficiaries.models import BeneficiaryPII
from portal.imports.problems import english
from portal.imports.validation import DUPLICATE, RowError, ValidRow

DB_CHUNK = 1000
_HEX_LIST = re.compile(r"[0-9a-f]+(?:,[0-9a-f]+)*")


class FirstRows:
    """The first row number seen for each 64-bit key, in two flat arrays.

    An open-addressing table with linear probing. A dict of 16-byte keys to row numbers costs
    about 110 MB per million keys in Python objects (214 MB measured for a phone and a national
    ID on each of 1,000,000 rows); this costs 12 bytes a slot at most 60% full. Measured for the
    same million rows: 50 MB of arrays, 75 MB at the peak of the last resize, about 3 s. Key 0
    marks an empty slot, so callers never pass 0.
    """

    _MAX_LOAD = 0.6

    def __init__(self, capacity: int = 1024):
        size = 1
        while size < capacity:
            size *= 2
        self._allocate(size)
        self._count = 0

    def _allocate(self, size: int) -> None:
        self._keys = array("Q", bytes(8 * size))
        self._rows = array("I", bytes(4 * size))
        self._mask = size - 1
        self._limit = int(size * self._MAX_LOAD)

    def lookup(self, key: int) -> tuple[int, int | None]:
        """The key's slot, and its first row or None; the slot stays valid until an insert."""
        keys, mask = self._keys, self._mask
        slot = key & mask  # the keys are hash output: their low bits are already uniform
        while True:
            found = keys[slot]
            if found == key:
                return slot, self._rows[slot]
            if found == 0:
                return slot, None
            slot = (slot + 1) & mask

    def insert(self, slot: int, key: int, row: int) -> None:
        """Store a key that ``lookup`` just did not find, in the slot it gave."""
        self._keys[slot] = key
        self._rows[slot] = row
        self._count += 1
        if self._count > self._limit:
            self._grow()

    def get(self, key: int) -> int | None:
        return self.lookup(key)[1]

    def add(self, key: int, row: int) -> None:
        """Remember ``row`` for ``key`` unless the key is known already."""
        slot, first = self.lookup(key)
        if first is None:
            self.insert(slot, key, row)

    def _grow(self) -> None:
        keys, rows = self._keys, self._rows
        self._allocate(len(keys) * 2)
        new_keys, new_rows = self._keys, self._rows
        mask = self._mask
        for key, row in zip(keys, rows, strict=True):
            if key:
                slot = key & mask
                while new_keys[slot]:
                    slot = (slot + 1) & mask
                new_keys[slot] = key
                new_rows[slot] = row

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return self._keys.itemsize * len(self._keys) + self._rows.itemsize * len(self._rows)


def index_key(index: str) -> int:
    """A 64-bit key from a hex blind index (collisions: about 1 in 10^7 at a million rows)."""
    return int(index[:16], 16) or 1


class InFileDeduper:
    """Remembers the rows accepted so far and names the first row a later one repeats.

    Only rows that ``check`` accepts are remembered: a row refused as a duplicate is not
    imported, so it cannot be what a later row duplicates.
    """

    def __init__(self) -> None:
        self._phones = FirstRows()
        self._national_ids = FirstRows()

    def check(self, row: ValidRow) -> RowError | None:
        """The duplicate error for a row seen before (phone first), or None, remembering it."""
        phone_key = index_key(row.phone_index)
        phone_slot, first = self._phones.lookup(phone_key)
        if first is not None:
            return _duplicate(row.row, "phone", "same_phone_as_row", row=first)
        if row.national_id_index:
            nid_key = index_key(row.national_id_index)
            nid_slot, first = self._national_ids.lookup(nid_key)
            if first is not None:
                return _duplicate(row.row, "national_id", "same_national_id_as_row", row=first)
            self._national_ids.insert(nid_slot, nid_key, row.row)
        # The two tables are separate, so the phone slot is still valid here.
        self._phones.insert(phone_slot, phone_key, row.row)
        return None

    @property
    def nbytes(self) -> int:
        return self._phones.nbytes + self._national_ids.nbytes


def _duplicate(at: int, field: str, code: str, /, **values) -> RowError:
    """Row ``at``'s duplicate problem ``code``; ``values`` fill its sentence."""
    return RowError(
        at, field, english(code, values), kind=DUPLICATE, code=code, values=values or None
    )


def _chunks(values: Iterable[str | None]) -> Iterator[list[str]]:
    unique = sorted({value for value in values if value})
    for start in range(0, len(unique), DB_CHUNK):
        yield unique[start : start + DB_CHUNK]


def existing_in_db(
    session: Session | Connection,
    phone_indexes: Iterable[str | None],
    nid_indexes: Iterable[str | None],
) -> tuple[set[str], set[str]]:
    """The given phone and national-ID indexes that an enrolled beneficiary already has.

    Queries in chunks of ``DB_CHUNK`` (bind-parameter limits); call it per batch of rows rather
    than with a whole file's indexes, which would hold them all in memory. On PostgreSQL both
    kinds go in one query per chunk, each as one array parameter (``= ANY``) sent as the text
    of an array: an IN list of a thousand placeholders, or a list the driver adapts value by
    value, costs the client several times what the server needs to answer (2.7 s of a
    100,000-row import for IN lists, measured). The indexes are hex, so the array's text needs
    no quoting (checked).
    """
    bind = session if isinstance(session, Connection) else session.get_bind()
    if bind.dialect.name == "postgresql":
        return _existing_by_arrays(session, phone_indexes, nid_indexes)
    found: list[set[str]] = []
    for column, indexes in (
        (BeneficiaryPII.phone_index, phone_indexes),
        (BeneficiaryPII.national_id_index, nid_indexes),
    ):
        hits: set[str] = set()
        for chunk in _chunks(indexes):
            hits.update(session.scalars(select(column).where(column.in_(chunk))))
        found.append(hits)
    return found[0], found[1]


def _array(values: list[str]):
    listed = ",".join(values)
    if values and not _HEX_LIST.fullmatch(listed):
        raise ValueError("blind indexes are lowercase hex")
    return cast(bindparam(None, "{" + listed + "}"), ARRAY(Text))


def _existing_by_arrays(session, phone_indexes, nid_indexes) -> tuple[set[str], set[str]]:
    phones, nids = set(), set()
    phone_hits: set[str] = set()
    nid_hits: set[str] = set()
    phone, nid = BeneficiaryPII.phone_index, BeneficiaryPII.national_id_index
    for phone_chunk, nid_chunk in zip_longest(_chunks(phone_indexes), _chunks(nid_indexes)):
        phone_chunk, nid_chunk = phone_chunk or [], nid_chunk or []
        phones.update(phone_chunk)
        nids.update(nid_chunk)
        query = select(phone, nid).where(
            or_(phone == any_(_array(phone_chunk)), nid == any_(_array(nid_chunk)))
        )
        for found_phone, found_nid in session.execute(query):
            if found_phone in phones:
                phone_hits.add(found_phone)
            if found_nid is not None and found_nid in nids:
                nid_hits.add(found_nid)
    return phone_hits, nid_hits


def existing_errors(row: ValidRow, phones: set[str], national_ids: set[str]) -> list[RowError]:
    """Duplicate errors for a row whose indexes ``existing_in_db`` found."""
    errors = []
    if row.phone_index in phones:
        errors.append(_duplicate(row.row, "phone", "already_enrolled_phone"))
    if row.national_id_index and row.national_id_index in national_ids:
        errors.append(_duplicate(row.row, "national_id", "already_enrolled_national_id"))
    return errors

from __future__ import annotations

import random
from types import SimpleNamespace

from sqlalchemy import event

from portal.crypto import blind_index
from portal.extensions import db
from portal.imports import dedup
from portal.imports.dedup import FirstRows, InFileDeduper, existing_errors, existing_in_db
from portal.imports.validation import DUPLICATE, RowError, RowValidator


def _row(row: int, phone: str, nid: str | None = None):
    # check() reads only these three attributes of a ValidRow.
    return SimpleNamespace(
        row=row,
        phone_index=blind_index("phone:" + phone),
        national_id_index=blind_index("nid:" + nid) if nid else None,
    )


def test_the_first_row_of_a_phone_or_national_id_is_named(index_key):
    seen = InFileDeduper()
    assert seen.check(_row(2, "+9779841000001", "A1234")) is None
    assert seen.check(_row(3, "+9779841000002")) is None
    assert seen.check(_row(4, "+9779841000001", "B9999")) == RowError(
        4, "phone", "Same phone number as row 2.", kind=DUPLICATE
    )
    assert seen.check(_row(5, "+9779841000003", "A1234")) == RowError(
        5, "national_id", "Same national ID as row 2.", kind=DUPLICATE
    )
    # Rows 4 and 5 were refused, so they are nobody's first row.
    assert seen.check(_row(6, "+9779841000004", "B9999")) is None
    assert seen.check(_row(7, "+9779841000003")) is None


def test_the_table_grows_and_keeps_every_key():
    table = FirstRows(capacity=4)
    rng = random.Random(1)
    keys = [rng.getrandbits(64) or 1 for _ in range(5000)]
    for row, key in enumerate(keys, start=2):
        table.add(key, row)
        table.add(key, row + 100_000)  # a second add keeps the first row
    assert len(table) == len(set(keys))
    assert all(table.get(key) == row for row, key in enumerate(keys, start=2))
    assert table.get(12345) is None


def test_a_million_rows_fit_in_little_memory():
    """A phone and a national ID for each of 1,000,000 rows: the tables stay far under 150 MB."""
    seen = InFileDeduper()
    rng = random.Random(2)
    for row in range(2, 1_000_002):
        person = SimpleNamespace(
            row=row, phone_index=f"{rng.getrandbits(64):016x}", national_id_index=None
        )
        person.national_id_index = f"{rng.getrandbits(64):016x}"
        assert seen.check(person) is None
    # 2 tables x 2**21 slots x 12 bytes: the arrays are all that grows with the rows.
    assert seen.nbytes == 2 * 2**21 * 12
    assert seen.nbytes < 60 * 1024**2


def test_people_already_enrolled_are_found_through_the_form_s_indexes(app, make_beneficiary):
    make_beneficiary(phone="9841000001", national_id="AB-1234")
    make_beneficiary(phone="9841000002")
    validator = RowValidator({"N": "name", "P": "phone", "I": "national_id"}, ["N", "P", "I"], "NP")
    same_phone = validator.validate(2, ["Someone", "+977 984-1000001", ""])
    same_id = validator.validate(3, ["Other", "9841000003", "ab 1234"])
    new = validator.validate(4, ["New", "9841000004", "ZZ9999"])

    phones, ids = existing_in_db(
        db.session,
        [r.phone_index for r in (same_phone, same_id, new)],
        [r.national_id_index for r in (same_phone, same_id, new)],
    )
    assert phones == {same_phone.phone_index}
    assert ids == {same_id.national_id_index}
    assert existing_errors(same_phone, phones, ids) == [
        RowError(
            2, "phone", "Already enrolled: a beneficiary has this phone number.", kind=DUPLICATE
        )
    ]
    assert existing_errors(same_id, phones, ids)[0].field == "national_id"
    assert existing_errors(new, phones, ids) == []


def test_database_lookups_go_in_chunks_of_a_thousand(app, make_beneficiary):
    person = make_beneficiary(phone="9841000001")
    wanted = [f"{n:064x}" for n in range(2500)] + [person.pii.phone_index]
    statements = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if "beneficiary_pii" in statement:
            statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        phones, ids = existing_in_db(db.session, iter(wanted), [None, None])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert phones == {person.pii.phone_index} and ids == set()
    assert len(statements) == 3  # 2,501 distinct indexes; nothing queried for no IDs
    assert dedup.DB_CHUNK == 1000

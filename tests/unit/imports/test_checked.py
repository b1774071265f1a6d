"""The rows a dry run keeps for the commit: read back exactly as they were checked."""

from __future__ import annotations

from datetime import date

from portal.imports import checked
from portal.imports.validation import ValidRow


def _row(number: int, **values) -> ValidRow:
    fields = {
        "row": number,
        "name": "Sita Kumari",
        "phone": "+9779841000001",
        "phone_index": "ab" * 32,
        "national_id": None,
        "national_id_index": None,
        "date_of_birth": None,
        "location": None,
        "latitude": None,
        "longitude": None,
        "gender": "",
        "language": "en",
        "consent": False,
        "retention_until": None,
    }
    fields.update(values)
    return ValidRow(**fields)


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[k : k + size] for k in range(0, len(data), size)]


def test_rows_come_back_as_written_however_the_bytes_are_cut():
    rows = [
        (1, "", False, _row(2)),
        (
            2,
            "uuid-0002",
            True,
            _row(
                3,
                name='Dil "Kancha", Bahadur नेपाली',
                national_id="12345678",
                national_id_index="cd" * 32,
                date_of_birth="1990-01-31",
                location="Ward 4, Bharatpur (27.7172, 85.324)",
                latitude=27.7172,
                longitude=-85.32400000000001,
                gender="female",
                language="ne",
                consent=True,
                retention_until=date(2030, 12, 31),
            ),
        ),
        (5, "odd\nuuid\twith \\ and \r", False, _row(9, name="Back\\slash", gender="other")),
    ]
    writer = checked.Writer()
    for ordinal, uuid, enrolled, row in rows:
        writer.add(ordinal, row, uuid, enrolled)
    assert writer.rows == 3 and writer.buffered > 0
    data = writer.take()
    assert writer.buffered == 0 and writer.take() == b""
    for size in (1, 2, 3, 7, 64, len(data)):  # splits inside multibyte characters and quotes
        assert list(checked._rows(iter(_pieces(data, size)))) == rows


def test_the_chunk_stream_reads_like_a_file():
    stream = checked.ChunkStream(iter([b"", b"abc", b"", b"defg", b"h"]))
    assert stream.read(2) == b"ab"
    assert stream.read(5) == b"c"  # a short read, as raw streams may give
    assert stream.read() == b"defgh"
    assert stream.read(4) == b""


def test_closing_the_reader_closes_its_source():
    closed = []

    def source():
        try:
            writer = checked.Writer()
            writer.add(1, _row(2))
            writer.add(2, _row(3))
            yield writer.take()
        finally:
            closed.append(True)

    rows = checked._rows(source())
    next(rows)
    rows.close()
    assert closed == [True]

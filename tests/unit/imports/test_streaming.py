"""Streaming is a correctness property: memory must not grow with the number of rows."""

from __future__ import annotations

import tracemalloc

from portal.imports.parsing import open_table
from tests.fixtures.imports import make_corpus


def _peak_while_reading(path, name: str) -> tuple[int, int]:
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        with open_table(path, name) as table:
            count = sum(1 for _ in table.rows())
        return count, tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()


def test_a_200000_row_csv_is_read_in_constant_memory(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join(make_corpus.HEADER) + "\r\n")
        for n in range(1, 200_001):
            out.write(f"Person {n},98{n:08d},ID-{n:07d},1990-01-31,Ward {n % 9}\r\n")
    assert path.stat().st_size > 10_000_000

    count, peak = _peak_while_reading(path, "big.csv")

    assert count == 200_000
    assert peak < 2 * 1024**2, f"{peak:,} bytes"  # ~0.3 MB measured, for an 11 MB file


def test_a_large_xlsx_is_read_in_constant_memory(tmp_path):
    small, large = tmp_path / "small.xlsx", tmp_path / "large.xlsx"
    make_corpus.many_rows_xlsx(small, 1_000)
    make_corpus.many_rows_xlsx(large, 15_000)

    _, small_peak = _peak_while_reading(small, "small.xlsx")
    count, large_peak = _peak_while_reading(large, "large.xlsx")

    assert count == 15_000
    # Fifteen times the rows, the same memory (~1 MB measured for both): nothing kept per row.
    assert large_peak < small_peak + 512 * 1024, (small_peak, large_peak)
    assert large_peak < 3 * 1024**2

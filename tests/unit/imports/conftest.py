"""Fixtures for the import building blocks: a blind-index key without an app, the bad-input
corpus, and ``run_import``, which takes a file through parse, mapping, validation and in-file
dedup the way an import does, and returns what a user would be told."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from portal import crypto
from portal.imports import dedup, fields, parsing, validation
from tests.fixtures.imports import make_corpus


@pytest.fixture
def index_key(monkeypatch):
    """A blind-index key for tests that validate rows without an app (restored afterwards)."""
    monkeypatch.setitem(crypto._keys, "index", b"k" * 32)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict[str, Path]:
    """Every corpus file by name: the committed text files and the generated binary/large ones."""
    paths = {name: make_corpus.HERE / name for name in make_corpus.COMMITTED}
    paths.update(make_corpus.build_generated(tmp_path_factory.mktemp("import-corpus")))
    return paths


@dataclass
class Outcome:
    rejected: str | None = None
    mapping_problems: list[str] = field(default_factory=list)
    table: parsing.Table | None = None
    valid: list[validation.ValidRow] = field(default_factory=list)
    errors: list[validation.RowError] = field(default_factory=list)

    def messages(self, row: int) -> list[str]:
        return [e.message for e in self.errors if e.row == row]


@pytest.fixture
def run_import(index_key):
    def run(
        path: Path,
        filename: str | None = None,
        *,
        sheet: str | None = None,
        mapping: dict[str, str] | None = None,
        country: str = "NP",
    ) -> Outcome:
        outcome = Outcome()
        try:
            with parsing.open_table(path, filename or path.name, sheet) as table:
                outcome.table = table
                chosen = fields.guess_mapping(table.headers) if mapping is None else mapping
                outcome.mapping_problems = fields.check_mapping(chosen, table.headers)
                if outcome.mapping_problems:
                    return outcome
                validator = validation.RowValidator(chosen, table.headers, country)
                in_file = dedup.InFileDeduper()
                for number, cells in table.rows():
                    result = validator.validate(number, cells)
                    if isinstance(result, list):
                        outcome.errors.extend(result)
                    elif (clash := in_file.check(result)) is not None:
                        outcome.errors.append(clash)
                    else:
                        outcome.valid.append(result)
        except parsing.FileRejected as exc:
            outcome.rejected = exc.message
        return outcome

    return run

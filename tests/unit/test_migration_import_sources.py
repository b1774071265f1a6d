"""Migration 0009 gives a project-less import source the project it fed, when there is one."""

from __future__ import annotations

from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from config import TestConfig
from portal import create_app
from portal.extensions import db

NOW = "2026-01-01 00:00:00"


def _batch(conn, batch_id: int, project_id: int, source_id: int) -> None:
    conn.execute(
        text(
            "insert into import_batches (id, project_id, source_id, filename, kind, sheets_json,"
            " status, mode, headers_json, mapping_json, total_rows, new_rows, duplicate_rows,"
            " invalid_rows, imported_rows, error_count, errors_preview_json, message,"
            " created_at, updated_at) values (:id, :p, :s, 'f.csv', 'csv', '[]', 'committed',"
            " 'all', '[]', '{}', 0, 0, 0, 0, 0, 0, '[]', '', :now, :now)"
        ),
        {"id": batch_id, "p": project_id, "s": source_id, "now": NOW},
    )


def test_sources_take_the_one_project_they_fed(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url, INSTANCE_DIR=str(tmp_path))
    with app.app_context():
        upgrade(revision="0006")
        engine = create_engine(url)
        with engine.begin() as conn:
            for pid in (1, 2):
                conn.execute(
                    text(
                        "insert into projects (id, name, type, status, description, location,"
                        " currency, created_at, updated_at) values"
                        " (:id, :name, 'cva', 'draft', '', '', 'NPR', :now, :now)"
                    ),
                    {"id": pid, "name": f"P{pid}", "now": NOW},
                )
            for sid, name in ((1, "one project"), (2, "two projects"), (3, "unused")):
                conn.execute(
                    text(
                        "insert into import_sources (id, name, kind, mapping_json, created_at,"
                        " updated_at) values (:id, :name, 'file', '{}', :now, :now)"
                    ),
                    {"id": sid, "name": name, "now": NOW},
                )
            _batch(conn, 1, 2, 1)
            _batch(conn, 2, 2, 1)
            _batch(conn, 3, 1, 2)
            _batch(conn, 4, 2, 2)
        upgrade()
        with engine.connect() as conn:
            found = dict(conn.execute(text("select id, project_id from import_sources")).all())
        engine.dispose()
        db.engine.dispose()
    assert found == {1: 2, 2: None, 3: None}

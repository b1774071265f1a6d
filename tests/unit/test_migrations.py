"""The migrations build exactly the schema the models describe, and grant new permissions."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import create_engine, select, text

from config import TestConfig
from portal import create_app
from portal.extensions import db


def test_migrations_match_the_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'migrated.db'}"
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url, INSTANCE_DIR=str(tmp_path))
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        db.engine.dispose()
    assert diff == [], diff


def test_upgrade_grants_new_permissions_to_seeded_roles(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    app = create_app(TestConfig, SQLALCHEMY_DATABASE_URI=url, INSTANCE_DIR=str(tmp_path))
    with app.app_context():
        upgrade(revision="0001")
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "insert into roles (name, description, created_at) values "
                    "('field agent', '', '2026-01-01'), ('custom', '', '2026-01-01')"
                )
            )
        upgrade()
        with engine.connect() as conn:
            rows = conn.execute(
                select(text("r.name, p.permission")).select_from(
                    text("roles r join role_permissions p on p.role_id = r.id")
                )
            ).all()
        engine.dispose()
        db.engine.dispose()
    assert ("field agent", "card.manage") in rows
    assert not [r for r in rows if r[0] == "custom"]

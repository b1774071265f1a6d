"""money trail: indexes for the staff redemptions list and vendor statements; redemption.read

Plain CREATE INDEX (no batch rebuild of ``redemptions``: on SQLite that would drop the dashboard's
triggers). Seeded roles get the new permission as a fresh install would.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 18:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_redemptions_project_created": ["project_id", "created_at", "id"],
    "ix_redemptions_project_status_created": ["project_id", "status", "created_at", "id"],
    "ix_redemptions_beneficiary_created": ["beneficiary_id", "created_at", "id"],
}
GRANTS = {
    "admin": ("redemption.read",),
    "programme manager": ("redemption.read",),
    "finance": ("redemption.read",),
}


def upgrade():
    for name, columns in INDEXES.items():
        op.create_index(name, "redemptions", columns)
    conn = op.get_bind()
    roles = sa.table("roles", sa.column("id", sa.Integer), sa.column("name", sa.String))
    role_permissions = sa.table(
        "role_permissions", sa.column("role_id", sa.Integer), sa.column("permission", sa.String)
    )
    for name, permissions in GRANTS.items():
        role_id = conn.execute(sa.select(roles.c.id).where(roles.c.name == name)).scalar()
        if role_id is None:
            continue
        have = set(
            conn.execute(
                sa.select(role_permissions.c.permission).where(
                    role_permissions.c.role_id == role_id
                )
            ).scalars()
        )
        rows = [{"role_id": role_id, "permission": p} for p in permissions if p not in have]
        if rows:
            op.bulk_insert(role_permissions, rows)


def downgrade():
    conn = op.get_bind()
    role_permissions = sa.table("role_permissions", sa.column("permission", sa.String))
    conn.execute(
        role_permissions.delete().where(role_permissions.c.permission == "redemption.read")
    )
    for name in INDEXES:
        op.drop_index(name, table_name="redemptions")

"""message.manage: staff settle the delivery log's messages to check

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-05 02:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

NEW = "message.manage"
GRANTED_TO = ("admin", "programme manager")


def upgrade():
    conn = op.get_bind()
    roles = sa.table("roles", sa.column("id", sa.Integer), sa.column("name", sa.String))
    role_permissions = sa.table(
        "role_permissions", sa.column("role_id", sa.Integer), sa.column("permission", sa.String)
    )
    for name in GRANTED_TO:
        role_id = conn.execute(sa.select(roles.c.id).where(roles.c.name == name)).scalar()
        if role_id is None:
            continue
        have = conn.execute(
            sa.select(role_permissions.c.permission).where(
                role_permissions.c.role_id == role_id, role_permissions.c.permission == NEW
            )
        ).first()
        if have is None:
            op.bulk_insert(role_permissions, [{"role_id": role_id, "permission": NEW}])


def downgrade():
    conn = op.get_bind()
    role_permissions = sa.table("role_permissions", sa.column("permission", sa.String))
    conn.execute(role_permissions.delete().where(role_permissions.c.permission == NEW))

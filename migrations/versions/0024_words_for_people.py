"""words for people: chain.details.read, and a failed job's error as one sentence

``chain.details.read`` guards on-chain details (addresses, hashes, fees, the Transactions page).
Seeded roles get it as a fresh install would (admin and finance); roles an admin made keep what
they have until someone grants it. ``jobs.problem`` / ``job_attempts.problem`` hold the sentence
shown for a failure (portal/jobs/problems.py) beside the technical ``error``.

Revision ID: 0024
Revises: 0020
Create Date: 2026-12-04 20:40:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0022"
branch_labels = None
depends_on = None

NEW = "chain.details.read"
GRANTS = ("admin", "finance")


def upgrade():
    op.add_column("jobs", sa.Column("problem", sa.Text()))
    op.add_column("job_attempts", sa.Column("problem", sa.Text()))
    conn = op.get_bind()
    roles = sa.table("roles", sa.column("id", sa.Integer), sa.column("name", sa.String))
    role_permissions = sa.table(
        "role_permissions", sa.column("role_id", sa.Integer), sa.column("permission", sa.String)
    )
    for name in GRANTS:
        role_id = conn.execute(sa.select(roles.c.id).where(roles.c.name == name)).scalar()
        if role_id is None:
            continue
        held = conn.execute(
            sa.select(role_permissions.c.permission).where(
                role_permissions.c.role_id == role_id, role_permissions.c.permission == NEW
            )
        ).first()
        if held is None:
            op.bulk_insert(role_permissions, [{"role_id": role_id, "permission": NEW}])


def downgrade():
    conn = op.get_bind()
    role_permissions = sa.table("role_permissions", sa.column("permission", sa.String))
    conn.execute(role_permissions.delete().where(role_permissions.c.permission == NEW))
    op.drop_column("job_attempts", "problem")
    op.drop_column("jobs", "problem")

"""jobs: a running job's claim is a lease (token, owner, expiry) renewed by its worker

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 13:45:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(), nullable=True))
        batch.create_index("ix_jobs_status_lease", ["status", "lease_expires_at"])
    # A job left "running" by the old code has no lease: it keeps the old rule (25 minutes
    # after its start), since an old worker may still be running it during the upgrade.
    if op.get_bind().dialect.name == "postgresql":
        later = "started_at + interval '25 minutes'"
    else:
        later = "datetime(started_at, '+25 minutes')"
    op.execute(f"UPDATE jobs SET lease_expires_at = {later} WHERE status = 'running'")


def downgrade():
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_status_lease")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
        batch.drop_column("lease_token")

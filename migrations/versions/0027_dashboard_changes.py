"""dashboard: a change count kept by the totals triggers

Every step a dashboard trigger applies to a vendor or people total row adds 1 to the row's
``changes``, in the same transaction as the change itself. A stored snapshot records the
project's sum; a page load that finds a different sum knows the snapshot is stale even when
the refresh notice was lost with a dying process (portal/dashboard/shared.py).

Revision ID: 0027
Revises: 0020
Create Date: 2026-12-04 21:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

TABLES = ("dashboard_vendor_totals", "dashboard_people_totals")


def upgrade():
    for table in TABLES:
        op.add_column(
            table, sa.Column("changes", sa.BigInteger(), server_default="0", nullable=False)
        )
    from portal.dashboard import triggers

    triggers.create(op.get_bind())


def downgrade():
    from portal.dashboard import triggers

    triggers.create(op.get_bind(), counting=False)
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("changes")

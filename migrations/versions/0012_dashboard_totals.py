"""dashboard: running totals kept by triggers, and the feed's index

The live dashboard reads per-vendor, per-minute and per-person totals instead of aggregating
every redemption. Triggers on redemptions and entitlements keep them (portal/dashboard/
triggers.py, the same DDL ``db.create_all()`` attaches); the existing rows are counted once
here (portal/dashboard/recount.py). Run it while nothing writes redemptions.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-03 13:45:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _sum(name):
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


def upgrade():
    op.create_table(
        "dashboard_vendor_totals",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("vendor_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _sum("count"),
        _sum("amount"),
        sa.Column("last_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint(
            "project_id", "vendor_id", "status", name=op.f("pk_dashboard_vendor_totals")
        ),
    )
    op.create_table(
        "dashboard_minute_totals",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        _sum("count"),
        _sum("amount"),
        sa.PrimaryKeyConstraint(
            "project_id", "minute", "shard", name=op.f("pk_dashboard_minute_totals")
        ),
    )
    op.create_table(
        "dashboard_people_served",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), nullable=False),
        _sum("settled"),
        sa.PrimaryKeyConstraint(
            "project_id", "beneficiary_id", name=op.f("pk_dashboard_people_served")
        ),
    )
    op.create_table(
        "dashboard_people_totals",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        _sum("allocated"),
        _sum("redeemed"),
        _sum("revoked"),
        _sum("people"),
        _sum("served"),
        sa.PrimaryKeyConstraint("project_id", "shard", name=op.f("pk_dashboard_people_totals")),
    )
    op.create_index(
        "ix_redemptions_project_confirmed", "redemptions", ["project_id", "confirmed_at"]
    )

    from portal.dashboard import recount, triggers

    conn = op.get_bind()
    triggers.create(conn, counting=False)  # the changes column comes with 0027
    recount.repair(conn)


def downgrade():
    from portal.dashboard import triggers

    triggers.drop(op.get_bind())
    op.drop_index("ix_redemptions_project_confirmed", table_name="redemptions")
    for name in (
        "dashboard_people_totals",
        "dashboard_people_served",
        "dashboard_minute_totals",
        "dashboard_vendor_totals",
    ):
        op.drop_table(name)

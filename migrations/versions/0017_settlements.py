"""settlements: vendors' cash-outs and settlement runs; settlement.read / settlement.manage

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 19:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

GRANTS = {
    "admin": ("settlement.read", "settlement.manage"),
    "finance": ("settlement.read", "settlement.manage"),
    "finance approver": ("settlement.read",),
}
NEW = ("settlement.read", "settlement.manage")


def upgrade():
    op.create_table(
        "settlement_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column(
            "opened_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")
        ),
        sa.Column("created_count", sa.Integer(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("skipped", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "settlements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "vendor_id",
            sa.Integer(),
            sa.ForeignKey("vendors.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column(
            "method_id", sa.Integer(), sa.ForeignKey("payout_methods.id", ondelete="SET NULL")
        ),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("burned", sa.Boolean(), nullable=False),
        sa.Column(
            "run_id",
            sa.Integer(),
            sa.ForeignKey("settlement_runs.id", ondelete="SET NULL"),
            index=True,
        ),
        sa.Column(
            "requested_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")
        ),
        sa.Column("by_vendor", sa.Boolean(), nullable=False),
        sa.Column(
            "approval_id",
            sa.Integer(),
            sa.ForeignKey("approval_requests.id", ondelete="SET NULL"),
        ),
        sa.Column("chain_key", sa.String(80), unique=True),
        sa.Column(
            "chain_tx_id", sa.Integer(), sa.ForeignKey("chain_txs.id", ondelete="SET NULL")
        ),
        sa.Column("payout_id", sa.Integer(), sa.ForeignKey("payouts.id", ondelete="SET NULL")),
        sa.Column("payout_tries", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("approved_at", sa.DateTime()),
        sa.Column("settled_at", sa.DateTime()),
        sa.Column("payout_sent_at", sa.DateTime()),
        sa.Column("paid_at", sa.DateTime()),
        sa.Column("failed_at", sa.DateTime()),
        sa.Column("reconciled_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index(
        "ix_settlements_project_vendor", "settlements", ["project_id", "vendor_id", "status"]
    )
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
    conn.execute(role_permissions.delete().where(role_permissions.c.permission.in_(NEW)))
    op.drop_index("ix_settlements_project_vendor", table_name="settlements")
    op.drop_table("settlements")
    op.drop_table("settlement_runs")

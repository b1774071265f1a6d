"""paying a settlement again after its payout failed: the account asked for and its approval

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04 20:45:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("settlements") as batch:
        batch.add_column(sa.Column("repay_method_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("repay_approval_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_settlements_repay_method",
            "payout_methods",
            ["repay_method_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            "fk_settlements_repay_approval",
            "approval_requests",
            ["repay_approval_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("settlements") as batch:
        batch.drop_constraint("fk_settlements_repay_approval", type_="foreignkey")
        batch.drop_constraint("fk_settlements_repay_method", type_="foreignkey")
        batch.drop_column("repay_approval_id")
        batch.drop_column("repay_method_id")

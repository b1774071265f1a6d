"""payouts: vendors' payout methods, payouts, bank batches, statements and their lines

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 18:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "payout_methods",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "vendor_id", sa.Integer(), sa.ForeignKey("vendors.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("account_name", sa.Text(), nullable=False),
        sa.Column("account_number", sa.Text(), nullable=False),
        sa.Column("bank_code", sa.String(20), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("added_by_vendor", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_payout_methods_vendor_id", "payout_methods", ["vendor_id"])
    op.create_index(
        "uq_payout_method_default",
        "payout_methods",
        ["vendor_id"],
        unique=True,
        postgresql_where=sa.text("is_default AND active"),
        sqlite_where=sa.text("is_default AND active"),
    )
    op.create_table(
        "payout_batches",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("reference", sa.String(32), nullable=False, unique=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("sent_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
    )
    op.create_index("ix_payout_batches_project_id", "payout_batches", ["project_id"])
    op.create_table(
        "payouts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("vendor_id", sa.Integer(), sa.ForeignKey("vendors.id"), nullable=False),
        sa.Column("method_id", sa.Integer(), sa.ForeignKey("payout_methods.id"), nullable=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("reference", sa.String(36), nullable=False, unique=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("narrative", sa.String(140), nullable=False),
        sa.Column("payee_name", sa.Text(), nullable=False),
        sa.Column("payee_account", sa.Text(), nullable=False),
        sa.Column("bank_code", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("failure_reason", sa.String(255), nullable=False),
        sa.Column("source_type", sa.String(30), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("batch_id", sa.Integer(), sa.ForeignKey("payout_batches.id"), nullable=True),
        sa.Column("books", sa.String(10), nullable=True),
        sa.Column("books_reason", sa.String(255), nullable=False),
        sa.Column("books_at", sa.DateTime(), nullable=True),
        sa.Column("send_attempts", sa.Integer(), nullable=False),
        sa.Column("last_checked_at", sa.DateTime(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("source_type", "source_id", name="uq_payout_source"),
    )
    for column in ("project_id", "vendor_id", "status", "batch_id", "created_at"):
        op.create_index(f"ix_payouts_{column}", "payouts", [column])
    op.create_table(
        "statements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_statements_project_id", "statements", ["project_id"])
    op.create_table(
        "statement_lines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "statement_id",
            sa.Integer(),
            sa.ForeignKey("statements.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("payout_id", sa.Integer(), sa.ForeignKey("payouts.id"), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolution", sa.String(255), nullable=False),
    )
    for column in ("statement_id", "project_id", "reference", "state", "payout_id"):
        op.create_index(f"ix_statement_lines_{column}", "statement_lines", [column])


def downgrade():
    op.drop_table("statement_lines")
    op.drop_table("statements")
    op.drop_table("payouts")
    op.drop_table("payout_batches")
    op.drop_index("uq_payout_method_default", table_name="payout_methods")
    op.drop_table("payout_methods")

"""account links and email: invitations, password resets, email changes; emails in the outbox

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 17:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "account_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE")),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("role_id", sa.Integer(), sa.ForeignKey("roles.id", ondelete="CASCADE")),
        sa.Column("project_ids", sa.Text(), nullable=False),
        sa.Column(
            "created_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL")
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime()),
        sa.Column("revoked_at", sa.DateTime()),
    )
    op.create_index("ix_account_links_purpose", "account_links", ["purpose"])
    op.create_index("ix_account_links_user_id", "account_links", ["user_id"])
    op.create_index("ix_account_links_email", "account_links", ["email"])
    # Plain ADD COLUMN (no batch rebuild): nullable columns need nothing else.
    op.add_column("outbox_messages", sa.Column("subject", sa.Text()))
    op.add_column("outbox_messages", sa.Column("html_body", sa.Text()))


def downgrade():
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_column("html_body")
        batch.drop_column("subject")
    op.drop_table("account_links")

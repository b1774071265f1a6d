"""name search: keyed hashes of the words of names and locations, and the index's build state

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-04 20:30:00

The index of existing people is built by ``flask name-index --if-stale`` (run after every
``db upgrade`` by the release step and ``make run``): it needs the PII key to read the names,
which a migration should not depend on.
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "beneficiary_name_terms",
        sa.Column("term", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column(
            "beneficiary_id",
            sa.Integer(),
            sa.ForeignKey("beneficiaries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("term", "beneficiary_id"),
    )
    op.create_index(
        "ix_beneficiary_name_terms_beneficiary_id", "beneficiary_name_terms", ["beneficiary_id"]
    )
    op.create_table(
        "name_index_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("built_at", sa.DateTime(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
    )


def downgrade():
    op.drop_table("name_index_state")
    op.drop_index("ix_beneficiary_name_terms_beneficiary_id", "beneficiary_name_terms")
    op.drop_table("beneficiary_name_terms")

"""name search: each person's keyed hashes of the words of their name and location (GIN), and
the index's build state

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-04 20:30:00

The index of existing people is built by ``flask name-index --if-stale`` (run after every
``db upgrade`` by the release step and ``make run``): it needs the PII key to read the names,
which a migration should not depend on.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "beneficiary_name_index",
        sa.Column(
            "beneficiary_id",
            sa.Integer(),
            sa.ForeignKey("beneficiaries.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "terms",
            postgresql.ARRAY(sa.BigInteger()).with_variant(sa.Text(), "sqlite"),
            nullable=False,
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_beneficiary_name_index_terms",
            "beneficiary_name_index",
            ["terms"],
            postgresql_using="gin",
        )
    else:
        op.create_index("ix_beneficiary_name_index_terms", "beneficiary_name_index", ["terms"])
    op.create_table(
        "name_index_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("built_at", sa.DateTime(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
    )


def downgrade():
    op.drop_table("name_index_state")
    op.drop_index("ix_beneficiary_name_index_terms", "beneficiary_name_index")
    op.drop_table("beneficiary_name_index")

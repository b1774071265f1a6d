"""chain: contract version 2 (vendor balances, settle, caps), vendor allow-list, settlements

Projects deployed before keep version 1 (server default) until `flask chain-migrate`.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 18:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("project_chains") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch.add_column(sa.Column("admin_address", sa.String(42), nullable=True))
    with op.batch_alter_table("chain_fundings") as batch:
        batch.add_column(sa.Column("mint_tx_hash", sa.String(66), nullable=True))
        batch.create_unique_constraint("uq_chain_fundings_mint_tx_hash", ["mint_tx_hash"])
    op.create_table(
        "chain_vendors",
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "vendor_id",
            sa.Integer(),
            sa.ForeignKey("vendors.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("tx_id", sa.Integer(), sa.ForeignKey("chain_txs.id"), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "chain_settlements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("key", sa.String(80), nullable=False, unique=True),
        sa.Column("vendor_id", sa.Integer(), sa.ForeignKey("vendors.id"), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("tx_id", sa.Integer(), sa.ForeignKey("chain_txs.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_chain_settlements_project_id", "chain_settlements", ["project_id"])
    op.create_table(
        "chain_migrations",
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("old_token_address", sa.String(42), nullable=False),
        sa.Column("old_contract_address", sa.String(42), nullable=False),
        sa.Column("old_contract_tx_id", sa.Integer(), sa.ForeignKey("chain_txs.id")),
        sa.Column("new_token_address", sa.String(42)),
        sa.Column("new_contract_address", sa.String(42)),
        sa.Column("entitlements_total", sa.BigInteger()),
        sa.Column("vendors_total", sa.BigInteger()),
        sa.Column("unallocated", sa.BigInteger()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime()),
    )


def downgrade():
    op.drop_table("chain_migrations")
    op.drop_index("ix_chain_settlements_project_id", "chain_settlements")
    op.drop_table("chain_settlements")
    op.drop_table("chain_vendors")
    with op.batch_alter_table("chain_fundings") as batch:
        batch.drop_constraint("uq_chain_fundings_mint_tx_hash", type_="unique")
        batch.drop_column("mint_tx_hash")
    with op.batch_alter_table("project_chains") as batch:
        batch.drop_column("admin_address")
        batch.drop_column("version")

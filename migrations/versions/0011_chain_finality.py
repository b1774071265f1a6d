"""chain finality: block hashes and finality of transactions, effects applied once, alerts

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-03 13:50:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("chain_txs") as batch:
        batch.add_column(sa.Column("block_hash", sa.String(66), nullable=True))
        batch.add_column(sa.Column("final_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("fee_capped_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("rollbacks", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_constraint("uq_chain_tx_signer_nonce", type_="unique")
        batch.create_index("ix_chain_txs_final_at", ["final_at"])
    # Transactions included before this revision were taken as final after one block.
    op.execute(
        "UPDATE chain_txs SET final_at = confirmed_at "
        "WHERE status IN ('confirmed', 'reverted') AND final_at IS NULL"
    )
    op.create_index(
        "uq_chain_tx_signer_live_nonce",
        "chain_txs",
        ["signer_id", "nonce"],
        unique=True,
        postgresql_where=sa.text("status <> 'failed'"),
        sqlite_where=sa.text("status <> 'failed'"),
    )
    op.create_table(
        "chain_effects",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("ref_id", sa.Integer(), nullable=False),
        sa.Column(
            "tx_id", sa.Integer(), sa.ForeignKey("chain_txs.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("kind", "ref_id", name="uq_chain_effect_kind_ref"),
    )
    # Effects applied before this revision: confirmed batches of entitlement projects and
    # confirmed fundings, so that an undo finds them.
    op.execute(
        "INSERT INTO chain_effects (kind, ref_id, tx_id, amount, created_at) "
        "SELECT 'funding', id, tx_id, amount, created_at FROM chain_fundings "
        "WHERE status = 'confirmed'"
    )
    op.execute(
        "INSERT INTO chain_effects (kind, ref_id, tx_id, amount, created_at) "
        "SELECT 'batch.confirmed', b.id, b.tx_id, "
        "CASE WHEN pc.contract_kind = 'Entitlements' THEN b.size * d.amount_each ELSE 0 END, "
        "CURRENT_TIMESTAMP "
        "FROM disbursement_batches b JOIN disbursements d ON d.id = b.disbursement_id "
        "JOIN project_chains pc ON pc.project_id = d.project_id WHERE b.status = 'confirmed'"
    )
    op.create_table(
        "chain_alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column(
            "tx_id", sa.Integer(), sa.ForeignKey("chain_txs.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_chain_alerts_kind", "chain_alerts", ["kind"])
    op.create_index("ix_chain_alerts_created_at", "chain_alerts", ["created_at"])


def downgrade():
    op.drop_table("chain_alerts")
    op.drop_table("chain_effects")
    op.drop_index("uq_chain_tx_signer_live_nonce", table_name="chain_txs")
    with op.batch_alter_table("chain_txs") as batch:
        batch.drop_index("ix_chain_txs_final_at")
        batch.create_unique_constraint("uq_chain_tx_signer_nonce", ["signer_id", "nonce"])
        batch.drop_column("rollbacks")
        batch.drop_column("fee_capped_at")
        batch.drop_column("final_at")
        batch.drop_column("block_hash")

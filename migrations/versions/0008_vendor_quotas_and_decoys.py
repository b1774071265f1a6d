"""vendor abuse: limit counts, decoy redemptions, payer subject, what is left after a payment

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('quota_hits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quota_hits'))
    )
    with op.batch_alter_table('quota_hits', schema=None) as batch_op:
        batch_op.create_index('ix_quota_hits_bucket_key_at', ['bucket', 'key', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_quota_hits_at'), ['at'], unique=False)

    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.alter_column('beneficiary_id', existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column('subject', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('remaining_after', sa.BigInteger(), nullable=True))

    with op.batch_alter_table('vendor_sign_ins', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('vendor_sign_ins', schema=None) as batch_op:
        batch_op.drop_column('subject')

    op.execute("DELETE FROM redemptions WHERE beneficiary_id IS NULL")
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_column('remaining_after')
        batch_op.drop_column('subject')
        batch_op.alter_column('beneficiary_id', existing_type=sa.Integer(), nullable=False)

    with op.batch_alter_table('quota_hits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quota_hits_at'))
        batch_op.drop_index('ix_quota_hits_bucket_key_at')

    op.drop_table('quota_hits')

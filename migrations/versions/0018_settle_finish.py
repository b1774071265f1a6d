"""settlement gaps: short bank line references for payouts; a project's pause; a vendor's
registration failures; chain.pause and chain.caps (granted to admin as a fresh install would)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 17:00:00

"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# A copy of portal/payouts/references.py at this revision: a migration must not change when
# the application's module does.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GRANTS = {"admin": ("chain.pause", "chain.caps")}
NEW = ("chain.pause", "chain.caps")


def _check(body: str) -> str:
    factor, total = 2, 0
    for char in reversed(body):
        addend = factor * ALPHABET.index(char)
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


def _short() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(9))
    return f"PO{body}{_check(body)}"


def upgrade():
    op.add_column("payouts", sa.Column("line_reference", sa.String(20), nullable=True))
    conn = op.get_bind()
    payouts = sa.table("payouts", sa.column("id", sa.Integer), sa.column("line_reference"))
    # Payouts made before keep their UUID on files already sent; they get a short one too, so
    # a statement typed from a new file can name them.
    taken: set[str] = set()
    for (payout_id,) in conn.execute(sa.select(payouts.c.id)).all():
        short = _short()
        while short in taken:
            short = _short()
        taken.add(short)
        conn.execute(
            payouts.update().where(payouts.c.id == payout_id).values(line_reference=short)
        )
    op.create_index("uq_payouts_line_reference", "payouts", ["line_reference"], unique=True)
    op.add_column("project_chains", sa.Column("paused_at", sa.DateTime(), nullable=True))
    op.add_column(
        "project_chains",
        sa.Column("pause_reason", sa.String(200), nullable=False, server_default=""),
    )
    op.add_column(
        "chain_vendors",
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
    )
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
    with op.batch_alter_table("chain_vendors") as batch:
        batch.drop_column("failures")
    with op.batch_alter_table("project_chains") as batch:
        batch.drop_column("pause_reason")
        batch.drop_column("paused_at")
    op.drop_index("uq_payouts_line_reference", table_name="payouts")
    with op.batch_alter_table("payouts") as batch:
        batch.drop_column("line_reference")

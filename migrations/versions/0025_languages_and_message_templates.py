"""languages: staff and vendor page language, message templates per language, one outbox
message per effect; messages.manage (granted to admin and programme manager as a fresh install
would)

Revision ID: 0025
Revises: 0020
Create Date: 2026-12-04 20:30:00

"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

NEW = ("messages.manage",)
GRANTS = {"admin": NEW, "programme manager": NEW}
# The defaults as they stood when this migration was written: later edits are staff's, in the
# database, and a later change of the defaults in code must not rewrite this migration.
SEEDED = {
    ("payment_code", "en"): "{code} is your code to pay {amount} at {shop}. Give it only to "
    "pay there. It expires in {minutes} minutes.",
    ("payment_code", "ne"): "{shop} मा {amount} तिर्ने तपाईंको कोड {code} हो। यो कोड त्यहीँ "
    "तिर्दा मात्र दिनुहोस्। यो {minutes} मिनेटमा सकिन्छ।",
    ("payment_short", "en"): "{shop} asked you to pay {amount}, but you have {left} left. No "
    "code was sent and nothing was taken.",
    ("payment_short", "ne"): "{shop} ले तपाईंसँग {amount} माग्यो, तर तपाईंसँग {left} मात्र "
    "बाँकी छ। कुनै कोड पठाइएन र केही पनि काटिएन।",
    ("allocation", "en"): "You have received {amount} from {project}. You now have {left} to "
    "spend at approved shops. Share a payment code only to pay.",
    ("allocation", "ne"): "तपाईंले {project} बाट {amount} पाउनुभयो। अब स्वीकृत पसलहरूमा खर्च "
    "गर्न तपाईंसँग {left} छ। भुक्तानी गर्दा मात्र कोड दिनुहोस्।",
    ("receipt", "en"): "You paid {amount} at {shop}. You have {left} left in {project}.",
    ("receipt", "ne"): "तपाईंले {shop} मा {amount} तिर्नुभयो। {project} मा तपाईंसँग {left} बाँकी छ।",
    ("balance", "en"): "You have {left} left to spend in {project}.",
    ("balance", "ne"): "{project} मा खर्च गर्न तपाईंसँग {left} बाँकी छ।",
}


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=8), nullable=True))
    with op.batch_alter_table("vendors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=8), nullable=True))
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dedupe_key", sa.String(length=120), nullable=True))
        batch_op.create_unique_constraint("uq_outbox_messages_dedupe_key", ["dedupe_key"])

    templates = op.create_table(
        "message_templates",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column(
            "updated_by_id",
            sa.Integer(),
            sa.ForeignKey(
                "users.id",
                name="fk_message_templates_updated_by_id_users",
                ondelete="SET NULL",
            ),
            nullable=True,
        ),
        sa.UniqueConstraint("kind", "language", name="uq_message_template"),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    op.bulk_insert(
        templates,
        [
            {"kind": kind, "language": language, "body": body, "updated_at": now}
            for (kind, language), body in SEEDED.items()
        ],
    )

    _grant()


def _grant():
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
    op.drop_table("message_templates")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_constraint("uq_outbox_messages_dedupe_key", type_="unique")
        batch_op.drop_column("dedupe_key")
    with op.batch_alter_table("vendors", schema=None) as batch_op:
        batch_op.drop_column("locale")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("locale")

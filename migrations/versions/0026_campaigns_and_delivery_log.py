"""campaigns, opt-outs, and the delivery log's columns on outbox messages

Revision ID: 0026
Revises: 0020
Create Date: 2026-12-04 21:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

GRANTS = {
    "admin": ("campaign.read", "campaign.manage", "message.read"),
    "programme manager": ("campaign.read", "campaign.manage", "message.read"),
}
NEW = ("campaign.read", "campaign.manage", "message.read")


def upgrade():
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer(),
            sa.ForeignKey(
                "projects.id", name="fk_campaigns_project_id_projects", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("audience", sa.String(10), nullable=False),
        sa.Column(
            "group_id",
            sa.Integer(),
            sa.ForeignKey(
                "beneficiary_groups.id",
                name="fk_campaigns_group_id_beneficiary_groups",
                ondelete="SET NULL",
            ),
        ),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("template", sa.String(80)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("scheduled_at", sa.DateTime()),
        sa.Column("started_at", sa.DateTime()),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("opted_out", sa.Integer(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column(
            "created_by_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_campaigns_created_by_id_users", ondelete="SET NULL"),
        ),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column(
            "start_job_id",
            sa.Integer(),
            sa.ForeignKey("jobs.id", name="fk_campaigns_start_job_id_jobs", ondelete="SET NULL"),
        ),
    )
    op.create_index("ix_campaigns_project_id", "campaigns", ["project_id"])
    op.create_index("ix_campaigns_status", "campaigns", ["status"])
    op.create_table(
        "campaign_texts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "campaign_id",
            sa.Integer(),
            sa.ForeignKey(
                "campaigns.id", name="fk_campaign_texts_campaign_id_campaigns", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.UniqueConstraint("campaign_id", "language", name="uq_campaign_texts_campaign_id"),
    )
    op.create_table(
        "campaign_opt_outs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("phone_index", sa.String(64), nullable=False),
        sa.Column("keyword", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("phone_index", name="uq_campaign_opt_outs_phone_index"),
    )
    with op.batch_alter_table("outbox_messages") as batch:
        batch.add_column(sa.Column("key", sa.String(36)))
        batch.add_column(sa.Column("error_code", sa.String(20)))
        batch.add_column(sa.Column("delivered_at", sa.DateTime()))
        batch.add_column(sa.Column("status_at", sa.DateTime()))
        batch.add_column(
            sa.Column("recorded_claim", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("campaign_id", sa.Integer()))
        batch.add_column(sa.Column("beneficiary_id", sa.Integer()))
        batch.add_column(sa.Column("language", sa.String(8)))
        batch.add_column(sa.Column("template", sa.String(80)))
        batch.create_unique_constraint("uq_outbox_messages_key", ["key"])
        batch.create_foreign_key(
            "fk_outbox_messages_campaign_id_campaigns",
            "campaigns",
            ["campaign_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            "fk_outbox_messages_beneficiary_id_beneficiaries",
            "beneficiaries",
            ["beneficiary_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index(
            "uq_outbox_campaign_beneficiary", ["campaign_id", "beneficiary_id"], unique=True
        )
        batch.create_index("ix_outbox_campaign_status", ["campaign_id", "status"])

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
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_index("ix_outbox_campaign_status")
        batch.drop_index("uq_outbox_campaign_beneficiary")
        batch.drop_constraint("fk_outbox_messages_beneficiary_id_beneficiaries", type_="foreignkey")
        batch.drop_constraint("fk_outbox_messages_campaign_id_campaigns", type_="foreignkey")
        batch.drop_constraint("uq_outbox_messages_key", type_="unique")
        for column in (
            "template",
            "language",
            "beneficiary_id",
            "campaign_id",
            "recorded_claim",
            "status_at",
            "delivered_at",
            "error_code",
            "key",
        ):
            batch.drop_column(column)
    op.drop_table("campaign_opt_outs")
    op.drop_table("campaign_texts")
    op.drop_index("ix_campaigns_status", "campaigns")
    op.drop_index("ix_campaigns_project_id", "campaigns")
    op.drop_table("campaigns")

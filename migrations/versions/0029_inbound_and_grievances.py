"""inbound messages, campaign opt-outs and grievances

Revision ID: 0029
Revises: 0020
Create Date: 2026-12-04 21:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0027"
branch_labels = None
depends_on = None

NEW = ("grievances.read", "grievances.manage")
# Seeded roles that exist already get what a fresh install gives them (roles an admin renamed
# or made are left alone: granting is their decision).
GRANTS = {"admin": NEW, "programme manager": NEW, "field agent": NEW}


def _fk(target: str, ondelete: str = "SET NULL"):
    return sa.ForeignKey(target, ondelete=ondelete)


def upgrade():
    op.create_table(
        "grievances",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ref", sa.String(12), nullable=False, unique=True),
        sa.Column("source", sa.String(10), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("project_id", sa.Integer(), _fk("projects.id"), nullable=True),
        sa.Column("beneficiary_id", sa.Integer(), _fk("beneficiaries.id"), nullable=True),
        sa.Column("vendor_id", sa.Integer(), _fk("vendors.id"), nullable=True),
        sa.Column("assignee_id", sa.Integer(), _fk("users.id"), nullable=True),
        sa.Column("created_by_id", sa.Integer(), _fk("users.id"), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    for column in ("status", "project_id", "beneficiary_id", "vendor_id", "assignee_id"):
        op.create_index(f"ix_grievances_{column}", "grievances", [column])
    op.create_index("ix_grievances_created_at", "grievances", ["created_at"])
    op.create_index("ix_grievances_status_due", "grievances", ["status", "due_on"])
    op.create_table(
        "grievance_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("grievance_id", sa.Integer(), _fk("grievances.id", "CASCADE"), nullable=False),
        sa.Column("author_id", sa.Integer(), _fk("users.id"), nullable=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_grievance_notes_grievance_id", "grievance_notes", ["grievance_id"])
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("provider_message_id", sa.String(80), nullable=False),
        sa.Column("phone_index", sa.String(64), nullable=False),
        sa.Column("beneficiary_id", sa.Integer(), _fk("beneficiaries.id"), nullable=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("reply_withheld", sa.String(60), nullable=False),
        sa.Column("reply_message_id", sa.Integer(), _fk("outbox_messages.id"), nullable=True),
        sa.Column("grievance_id", sa.Integer(), _fk("grievances.id"), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("channel", "provider_message_id", name="uq_inbound_provider_id"),
    )
    op.create_index("ix_inbound_messages_phone_index", "inbound_messages", ["phone_index"])
    op.create_index("ix_inbound_messages_beneficiary_id", "inbound_messages", ["beneficiary_id"])
    op.create_index("ix_inbound_messages_received_at", "inbound_messages", ["received_at"])
    _grant()


def _grant() -> None:
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
    role_permissions = sa.table("role_permissions", sa.column("permission", sa.String))
    op.get_bind().execute(role_permissions.delete().where(role_permissions.c.permission.in_(NEW)))
    op.drop_table("inbound_messages")
    op.drop_table("grievance_notes")
    op.drop_table("grievances")

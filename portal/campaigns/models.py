"""A campaign, its text per language, and the numbers that said STOP.

The messages themselves are outbox rows (``portal.comms.models.OutboxMessage``) that name their
campaign: the delivery log and the campaign's progress are the same rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.timeutil import utcnow

DRAFT, SCHEDULED, SENDING, PAUSED, FINISHED, CANCELLED = (
    "draft",
    "scheduled",
    "sending",
    "paused",
    "finished",
    "cancelled",
)
STATUSES = (DRAFT, SCHEDULED, SENDING, PAUSED, FINISHED, CANCELLED)
# The audience: everyone in the project, one of its groups, or the project filtered.
PROJECT, GROUP, FILTER = "project", "group", "filter"
AUDIENCES = (PROJECT, GROUP, FILTER)


class Campaign(db.Model):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    channel: Mapped[str] = mapped_column(String(10))
    audience: Mapped[str] = mapped_column(String(10), default=PROJECT)
    group_id: Mapped[int | None] = mapped_column(
        ForeignKey("beneficiary_groups.id", ondelete="SET NULL")
    )
    # FILTER: {"gender": ..., "language": ..., "status": ...}; empty values match everyone.
    filters: Mapped[dict] = mapped_column(JSON, default=dict)
    # WhatsApp: the approved template the texts fill (its one body parameter).
    template: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(10), default=DRAFT, index=True)
    scheduled_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Counted when the messages were made: people who had said STOP (skipped), and messages.
    opted_out: Mapped[int] = mapped_column(default=0)
    recipients: Mapped[int] = mapped_column(default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    start_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))

    texts: Mapped[list[CampaignText]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="CampaignText.language"
    )

    def text_for(self, language: str | None) -> CampaignText | None:
        """The text in ``language``, else the English one (every campaign has it)."""
        by_language = {t.language: t for t in self.texts}
        return by_language.get(language or "en") or by_language.get("en")


class CampaignText(db.Model):
    __tablename__ = "campaign_texts"
    __table_args__ = (UniqueConstraint("campaign_id", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(8))
    body: Mapped[str] = mapped_column(Text)
    campaign: Mapped[Campaign] = relationship(back_populates="texts")


class OptOut(db.Model):
    """A number that said STOP: no campaign reaches it (codes, receipts and replies still do).

    Only the number's keyed hash is kept, as for beneficiaries' phones: a list of who opted out
    is personal data the portal does not need in clear.
    """

    __tablename__ = "campaign_opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_index: Mapped[str] = mapped_column(String(64), unique=True)
    keyword: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

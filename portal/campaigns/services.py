"""Composing a campaign and steering it: send now or at a time, pause, resume, cancel.

Every change of a campaign's status is one conditional UPDATE (``portal.transitions``): a double
click, or a pause racing the start, changes it once and the other is told why not.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import Select, select, update

from portal.audit import services as audit
from portal.beneficiaries.models import BeneficiaryGroup
from portal.campaigns import sending
from portal.campaigns.models import (
    CANCELLED,
    DRAFT,
    FILTER,
    GROUP,
    PAUSED,
    SCHEDULED,
    SENDING,
    Campaign,
    CampaignText,
)
from portal.comms.models import CANCELLED as MESSAGE_CANCELLED
from portal.comms.models import HELD, QUEUED, WHATSAPP, OutboxMessage
from portal.errors import InvalidTransition, NotFound, ValidationFailed
from portal.extensions import db
from portal.jobs import dispatch
from portal.jobs.kinds import CAMPAIGN_START
from portal.projects import services as projects
from portal.projects.models import Project
from portal.timeutil import utcnow
from portal.transitions import move


def _status_label(status: str | None) -> str:
    from portal.campaigns.forms import CAMPAIGN_STATUS_LABELS

    return str(CAMPAIGN_STATUS_LABELS.get(status or "", status or ""))


def visible(user) -> Select:
    return projects.scope(select(Campaign), Campaign.project_id, user)


def get_visible(user, campaign_id: int) -> Campaign:
    campaign = db.session.scalar(visible(user).where(Campaign.id == campaign_id))
    if campaign is None:
        raise NotFound(_("No such campaign."))
    return campaign


def create(project: Project, data: dict, texts: dict[str, str], user_id: int | None) -> Campaign:
    """A draft campaign; ``texts`` maps language → text (English is required)."""
    projects.ensure_writable(project)
    texts = {lang: body.strip() for lang, body in texts.items() if body and body.strip()}
    if "en" not in texts:
        raise ValidationFailed({"text_en": _("Write the English text: it goes to everyone else.")})
    group_id = None
    if data["audience"] == GROUP:
        group = db.session.get(BeneficiaryGroup, data.get("group_id") or 0)
        if group is None or group.project_id != project.id:
            raise ValidationFailed({"group_id": _("Choose one of this project's groups.")})
        group_id = group.id
    if data["channel"] == WHATSAPP and not (data.get("template") or "").strip():
        raise ValidationFailed(
            {"template": _("WhatsApp needs the name of an approved message template.")}
        )
    campaign = Campaign(
        project_id=project.id,
        name=data["name"].strip(),
        channel=data["channel"],
        audience=data["audience"],
        group_id=group_id,
        filters=(
            {"gender": data.get("gender") or "", "language": data.get("language") or ""}
            if data["audience"] == FILTER
            else {}
        ),
        template=(data.get("template") or "").strip() or None
        if data["channel"] == WHATSAPP
        else None,
        created_by_id=user_id,
    )
    campaign.texts = [CampaignText(language=lang, body=body) for lang, body in texts.items()]
    db.session.add(campaign)
    db.session.flush()
    record(campaign, "created", languages=sorted(texts), group_id=group_id)
    return campaign


def record(campaign: Campaign, what: str, **data) -> None:
    """The audit entry of a campaign action: ids, channel, audience, languages and counts,
    never its name (staff free text), its texts nor anything about the people it reaches."""
    audit.record(
        f"campaign.{what}",
        f"Campaign {campaign.id} {what.replace('_', ' ')}",
        target=campaign,
        project_id=campaign.project_id,
        data={
            "channel": campaign.channel,
            "audience": campaign.audience,
            "status": campaign.status,
            **{k: v for k, v in data.items() if v is not None},
        },
    )


def send(campaign: Campaign, when: datetime | None, user_id: int | None) -> Campaign:
    """Start the campaign now (``when`` None or past) or at ``when`` (UTC)."""
    now = utcnow()
    at = when if when and when > now else None
    move(
        campaign,
        (DRAFT,),
        SCHEDULED,
        lambda found: _("This campaign is %(status)s already.", status=_status_label(found)),
        scheduled_at=at,
    )
    delay = int((at - now).total_seconds() * 1000) + 1 if at else None
    job = dispatch.enqueue(
        CAMPAIGN_START.name,
        {"campaign_id": campaign.id},
        project_id=campaign.project_id,
        created_by_id=user_id,
        delay_ms=delay,
    )
    campaign.start_job_id = job.id
    record(
        campaign,
        "scheduled" if at else "sent",
        scheduled_at=at.isoformat() if at else None,
    )
    sending.announce(campaign)
    return campaign


def pause(campaign: Campaign) -> None:
    move(campaign, (SENDING, SCHEDULED), PAUSED, _("Only a campaign on its way can be paused."))
    record(campaign, "paused")
    sending.announce(campaign)


def resume(campaign: Campaign) -> int:
    """Back to sending (or to its schedule); the held messages get a job again."""
    started = campaign.started_at is not None
    move(
        campaign,
        (PAUSED,),
        SENDING if started else SCHEDULED,
        _("Only a paused campaign can be resumed."),
    )
    if not started:
        # Paused before its start: the start job, still to come, makes the messages then.
        dispatch.enqueue(
            CAMPAIGN_START.name, {"campaign_id": campaign.id}, project_id=campaign.project_id
        )
    # Every held message back to queued in one UPDATE, then their jobs a chunk at a time,
    # paced at the channel's rate like the start's (the page gets the counts from ``announce``).
    held = sorted(
        db.session.scalars(
            update(OutboxMessage)
            .where(OutboxMessage.campaign_id == campaign.id, OutboxMessage.status == HELD)
            .values(status=QUEUED, recorded_claim=0, status_at=utcnow())
            .returning(OutboxMessage.id),
            execution_options={"synchronize_session": False},
        )
    )
    for start in range(0, len(held), sending.CHUNK):
        sending.queue_jobs(campaign, held[start : start + sending.CHUNK], already=start)
    requeued = len(held)
    record(campaign, "resumed", requeued=requeued)
    sending.announce(campaign)
    if started and not sending.finish_if_done(campaign.id):
        sending.watch_later(campaign.id)
    return requeued


def cancel(campaign: Campaign) -> int:
    """Stop the campaign for good; messages not yet sent are cancelled (how many)."""
    if campaign.status == CANCELLED:
        raise InvalidTransition(_("This campaign is cancelled already."))
    move(
        campaign,
        (DRAFT, SCHEDULED, SENDING, PAUSED),
        CANCELLED,
        lambda found: _(
            "A campaign that is %(status)s cannot be cancelled.", status=_status_label(found)
        ),
        finished_at=utcnow(),
    )
    result = db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.campaign_id == campaign.id, OutboxMessage.status.in_((QUEUED, HELD)))
        .values(status=MESSAGE_CANCELLED, status_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    record(campaign, "cancelled", messages_cancelled=result.rowcount or 0)
    sending.announce(campaign)
    return result.rowcount or 0

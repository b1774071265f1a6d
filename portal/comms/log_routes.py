"""The delivery log: every message the portal sent or tried to send, newest first.

Staff see where each message stands, the provider's id, why it failed in words and how many
tries it took; never its text, and the number masked (last three digits), since the log is for
finding out what happened to a message, not for reading people's messages.
"""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user
from sqlalchemy import func, select

from portal import inputs
from portal.accounts.guards import permission_required
from portal.campaigns.models import Campaign
from portal.comms import errorcodes
from portal.comms.models import CHANNELS, STATUSES, OutboxMessage
from portal.extensions import db
from portal.projects import services as projects

bp = Blueprint("delivery_log", __name__, url_prefix="/delivery-log")
PAGE = 100
CHANNEL_LABELS = {"sms": "SMS", "email": "Email", "whatsapp": "WhatsApp"}
STATUS_LABELS = {
    "queued": "Waiting",
    "sent": "Sent",
    "delivered": "Delivered",
    "failed": "Failed",
    "review": "To check",
    "held": "Paused",
    "cancelled": "Cancelled",
    "opted_out": "Said STOP",
}


def mask(number: str | None) -> str:
    """A number or address with all but its end hidden (blank once purged)."""
    if not number:
        return "—"
    if "@" in number:
        name, _, domain = number.partition("@")
        return f"{name[:1]}•••@{domain}"
    return "•••• " + number[-3:]


@bp.get("")
@permission_required("message.read")
def index():
    status = inputs.choice_arg("status", STATUSES)
    channel = inputs.choice_arg("channel", CHANNELS)
    campaign_id = inputs.id_arg("campaign")
    query = projects.scope(select(OutboxMessage), OutboxMessage.project_id, current_user)
    if status:
        query = query.where(OutboxMessage.status == status)
    if channel:
        query = query.where(OutboxMessage.channel == channel)
    if campaign_id:
        query = query.where(OutboxMessage.campaign_id == campaign_id)
    messages = list(db.session.scalars(query.order_by(OutboxMessage.id.desc()).limit(PAGE)))
    counted = projects.scope(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status),
        OutboxMessage.project_id,
        current_user,
    )
    if campaign_id:
        counted = counted.where(OutboxMessage.campaign_id == campaign_id)
    counts = dict(db.session.execute(counted).all())
    campaign_ids = {m.campaign_id for m in messages if m.campaign_id}
    names = dict(
        db.session.execute(
            select(Campaign.id, Campaign.name).where(Campaign.id.in_(campaign_ids))
        ).all()
    )
    return render_template(
        "comms/log.html",
        messages=messages,
        counts=counts,
        statuses=STATUSES,
        channels=CHANNELS,
        status=status,
        channel=channel,
        campaign_id=campaign_id,
        campaign_names=names,
        mask=mask,
        describe=errorcodes.describe,
        page_size=PAGE,
        channel_labels=CHANNEL_LABELS,
        status_labels=STATUS_LABELS,
    )

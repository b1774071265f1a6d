"""The delivery log: every message the portal sent or tried to send, newest first.

Staff see where each message stands, the provider's id, why it failed in words and how many
tries it took; never its text, and the number masked (last three digits), since the log is for
finding out what happened to a message, not for reading people's messages.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import func, select

from portal import inputs
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.campaigns.models import Campaign
from portal.comms import errorcodes, review
from portal.comms.models import CHANNELS, STATUSES, OutboxMessage
from portal.extensions import db
from portal.projects import services as projects
from portal.transactions import attempt

bp = Blueprint("delivery_log", __name__, url_prefix="/delivery-log")
PAGE = 100
CHANNEL_LABELS = {"sms": _l("SMS"), "email": _l("Email"), "whatsapp": _l("WhatsApp")}
STATUS_LABELS = {
    "queued": _l("Waiting"),
    "sent": _l("Sent"),
    "delivered": _l("Delivered"),
    "failed": _l("Failed"),
    "review": _l("To check"),
    "held": _l("Paused"),
    "cancelled": _l("Cancelled"),
    "opted_out": _l("Said STOP"),
}


def mask(number: str | None) -> str:
    """A number or address with all but its end hidden (blank once purged)."""
    if not number:
        return "—"
    if "@" in number:
        name, _, domain = number.partition("@")
        return f"{name[:1]}•••@{domain}"
    return "•••• " + number[-3:]


def _query(status: str | None, channel: str | None, campaign_id: int | None):
    """The messages the user sees, filtered."""
    query = projects.scope(select(OutboxMessage), OutboxMessage.project_id, current_user)
    if status:
        query = query.where(OutboxMessage.status == status)
    if channel:
        query = query.where(OutboxMessage.channel == channel)
    if campaign_id:
        query = query.where(OutboxMessage.campaign_id == campaign_id)
    return query


@bp.get("")
@permission_required("message.read")
def index():
    status = inputs.choice_arg("status", STATUSES)
    channel = inputs.choice_arg("channel", CHANNELS)
    campaign_id = inputs.id_arg("campaign")
    query = _query(status, channel, campaign_id)
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
        to_check=db.session.scalar(
            _query("review", channel, campaign_id).with_only_columns(func.count())
        )
        if status == "review"
        else None,
        most_at_once=review.MOST_AT_ONCE,
    )


def _outcome() -> str:
    outcome = request.form.get("outcome", "")
    if outcome not in review.OUTCOMES:
        abort(400)
    return outcome


def _done(moved: int, outcome: str) -> None:
    if not moved:
        flash(_("Nothing changed: the message was settled already."), "info")
    elif outcome == review.WAS_DELIVERED:
        flash(
            ngettext(
                "%(num)s message marked delivered.", "%(num)s messages marked delivered.", moved
            ),
            "success",
        )
    else:
        flash(
            ngettext(
                "%(num)s message marked not sent: it is queued to be sent again.",
                "%(num)s messages marked not sent: they are queued to be sent again.",
                moved,
            ),
            "success",
        )


@bp.post("/<int:message_id>/review")
@permission_required("message.read", "message.manage")
def settle_one(message_id: int):
    """One message to check, settled after staff checked with the provider."""
    outcome = _outcome()
    back = request.form.get("next") or url_for("delivery_log.index", status="review")
    if not back.startswith("/") or back.startswith("//"):
        back = url_for("delivery_log.index", status="review")
    if not EmptyForm().validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(back)
    query = _query(None, None, None).where(OutboxMessage.id == message_id)
    if db.session.scalar(query.with_only_columns(OutboxMessage.id)) is None:
        abort(404)
    with attempt():
        moved = review.settle(query, outcome)
    _done(len(moved), outcome)
    return redirect(back)


@bp.post("/review")
@permission_required("message.read", "message.manage")
def settle_selection():
    """Every message to check that the log's filters (channel, campaign) select."""
    outcome = _outcome()
    channel = inputs.choice_arg("channel", CHANNELS, values=request.form)
    campaign_id = inputs.id_arg("campaign", values=request.form)
    back = url_for(
        "delivery_log.index", status="review", channel=channel or None, campaign=campaign_id
    )
    if not EmptyForm().validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(back)
    with attempt():
        moved = review.settle(_query(None, channel, campaign_id), outcome)
    _done(len(moved), outcome)
    return redirect(back)

"""A campaign on its way: its messages made when it starts, held while it is paused, dropped
when it is cancelled, and the campaign finished once none is left to send.

``start`` (job ``campaigns.start``) makes one outbox message per person in the audience who has
not said STOP, in their language (English when the campaign has no text in it), each with its
own job on the ``campaigns`` queue. A message exists at most once per person and campaign (a
unique index), so a start that runs twice (a worker killed after its commit) adds nobody twice.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import exists, func, select, update

from portal import realtime
from portal.beneficiaries.models import (
    ACTIVE,
    Beneficiary,
    BeneficiaryPII,
    GroupMember,
    ProjectBeneficiary,
)
from portal.campaigns.models import (
    CANCELLED,
    FILTER,
    FINISHED,
    GROUP,
    PAUSED,
    SCHEDULED,
    SENDING,
    Campaign,
    OptOut,
)
from portal.comms import delivery, ratelimit
from portal.comms.models import CANCELLED as MESSAGE_CANCELLED
from portal.comms.models import (
    HELD,
    OPTED_OUT,
    QUEUED,
    STATUSES,
    WHATSAPP,
    OutboxMessage,
)
from portal.comms.services import KEEP_DAYS
from portal.crypto import blind_index
from portal.extensions import db
from portal.jobs import dispatch
from portal.jobs.kinds import CAMPAIGN_SMS, CAMPAIGN_START, CAMPAIGN_WATCH, CAMPAIGN_WHATSAPP
from portal.jobs.lifecycle import PermanentJobError
from portal.timeutil import utcnow
from portal.transitions import dialect_insert

CAMPAIGN_CHANGED = "campaign.changed"
PURPOSE = "campaign"


def phone_index(e164: str) -> str:
    """The keyed hash a number is known by (the same as a beneficiary's ``phone_index``)."""
    return blind_index("phone:" + e164)


def audience(campaign: Campaign):
    """The active people the campaign is for: (beneficiary id, language, phone index)."""
    query = (
        select(Beneficiary.id, Beneficiary.language, BeneficiaryPII.phone_index)
        .join(BeneficiaryPII, BeneficiaryPII.beneficiary_id == Beneficiary.id)
        .join(ProjectBeneficiary, ProjectBeneficiary.beneficiary_id == Beneficiary.id)
        .where(
            ProjectBeneficiary.project_id == campaign.project_id,
            Beneficiary.status == ACTIVE,
        )
    )
    if campaign.audience == GROUP:
        query = query.join(GroupMember, GroupMember.beneficiary_id == Beneficiary.id).where(
            GroupMember.group_id == campaign.group_id
        )
    elif campaign.audience == FILTER:
        wanted = campaign.filters or {}
        if wanted.get("gender"):
            query = query.where(Beneficiary.gender == wanted["gender"])
        if wanted.get("language"):
            query = query.where(Beneficiary.language == wanted["language"])
    return query


def audience_counts(campaign: Campaign) -> dict:
    """How many the campaign would reach now, by language, and how many said STOP."""
    found = audience(campaign).subquery()
    stopped = exists(select(OptOut.id).where(OptOut.phone_index == found.c.phone_index))
    rows = db.session.execute(
        select(found.c.language, stopped.label("stopped"), func.count()).group_by(
            found.c.language, "stopped"
        )
    ).all()
    by_language: dict[str, int] = {}
    opted_out = 0
    for language, is_stopped, count in rows:
        if is_stopped:
            opted_out += count
        else:
            by_language[language or "en"] = by_language.get(language or "en", 0) + count
    return {
        "total": sum(by_language.values()),
        "by_language": dict(sorted(by_language.items())),
        "opted_out": opted_out,
    }


def start(campaign_id: int) -> str:
    """The ``campaigns.start`` job: make and queue the campaign's messages."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise PermanentJobError("The campaign this job was for no longer exists.")
    if campaign.status not in (SCHEDULED, SENDING):
        return f"not started: the campaign is {campaign.status}"
    now = utcnow()
    if campaign.scheduled_at and campaign.scheduled_at > now:
        # Woken early (a sweeper re-sent the message): wait again for the time set.
        delay = int((campaign.scheduled_at - now).total_seconds() * 1000) + 1
        job = dispatch.enqueue(
            CAMPAIGN_START.name,
            {"campaign_id": campaign.id},
            project_id=campaign.project_id,
            delay_ms=delay,
        )
        campaign.start_job_id = job.id
        return "waiting for its time"
    db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status == SCHEDULED)
        .values(status=SENDING, started_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(campaign)
    made = _make_messages(campaign)
    if made:
        from portal.campaigns.services import record

        record(
            campaign,
            "messages_made",
            made=made,
            recipients=campaign.recipients,
            opted_out=campaign.opted_out,
        )
    announce(campaign)
    if not finish_if_done(campaign.id):
        watch_later(campaign.id)
    return f"{made} messages queued"


# Messages are made this many at a time: one multi-row INSERT of messages, one of their jobs,
# one UPDATE that ties each message to its job.
CHUNK = 1000


def _make_messages(campaign: Campaign) -> int:
    """Make the messages still missing, a chunk at a time; how many this call made.

    Set-based and idempotent: the people are read in id order after the last one of the
    previous chunk, leaving out those who said STOP and those who have a message of this
    campaign already, and each chunk is one ``INSERT ... ON CONFLICT DO NOTHING`` on the
    (campaign, person) unique index, whose RETURNING names the rows this call added: only those
    get a job. A second start (a worker killed after its commit, or two at once: PostgreSQL
    makes the second INSERT wait for the first's transaction, then skip its rows) adds nobody
    twice, and a start killed midway is rolled back whole and made again by its retry.
    """
    stopped = select(OptOut.id).where(OptOut.phone_index == BeneficiaryPII.phone_index).exists()
    has_one = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.campaign_id == campaign.id,
            OutboxMessage.beneficiary_id == Beneficiary.id,
        )
        .exists()
    )
    wanted = audience(campaign).add_columns(BeneficiaryPII.phone).where(~stopped, ~has_one)
    keep_until = utcnow() + timedelta(days=KEEP_DAYS)
    texts = {text.language: text for text in campaign.texts}
    english = campaign.text_for("en")
    insert_messages = (
        dialect_insert(OutboxMessage)
        .on_conflict_do_nothing()
        .returning(OutboxMessage.id, OutboxMessage.beneficiary_id)
    )
    made, last_id = 0, 0
    while True:
        people = db.session.execute(
            wanted.where(Beneficiary.id > last_id).order_by(Beneficiary.id).limit(CHUNK)
        ).all()
        if not people:
            break
        last_id = people[-1][0]
        rows = []
        for person_id, language, _index, phone in people:
            text = texts.get(language) or english
            rows.append(
                {
                    "channel": campaign.channel,
                    "purpose": PURPOSE,
                    "recipient": phone,
                    "body": text.body,
                    "language": text.language,
                    "template": campaign.template,
                    "provider": "",
                    "key": str(uuid.uuid4()),
                    "project_id": campaign.project_id,
                    "campaign_id": campaign.id,
                    "beneficiary_id": person_id,
                    "purge_after": keep_until,
                }
            )
        added = db.session.execute(insert_messages, rows).all()
        if not added:
            continue
        message_ids = sorted(message_id for message_id, _person in added)
        queue_jobs(campaign, message_ids, already=made)
        made += len(added)
    campaign.recipients = db.session.scalar(
        select(func.count(OutboxMessage.id)).where(OutboxMessage.campaign_id == campaign.id)
    )
    found = audience(campaign).subquery()
    campaign.opted_out = db.session.scalar(
        select(func.count())
        .select_from(found)
        .where(select(OptOut.id).where(OptOut.phone_index == found.c.phone_index).exists())
    )
    return made


def queue_jobs(campaign: Campaign, message_ids: list[int], already: int = 0) -> None:
    """One job per message, in one INSERT, each message's job paced at the channel's rate
    (``ratelimit.spread``; ``already``: messages of this batch paced before these), and every
    message tied to its job in one UPDATE."""
    kind = CAMPAIGN_WHATSAPP if campaign.channel == WHATSAPP else CAMPAIGN_SMS
    job_ids = dispatch.enqueue_many(
        kind.name,
        [{"message_id": message_id} for message_id in message_ids],
        project_id=campaign.project_id,
        delays_ms=ratelimit.spread(campaign.channel, len(message_ids), already),
    )
    db.session.execute(
        update(OutboxMessage),
        [
            {"id": message_id, "job_id": job_id}
            for message_id, job_id in zip(message_ids, job_ids, strict=True)
        ],
    )


def gate(message: OutboxMessage) -> str | None:
    """Why a campaign's message does not go now (and where it went instead), or None."""
    # One round trip: the campaign's status and whether the number said STOP since.
    stopped_since = (
        select(OptOut.id).where(OptOut.phone_index == phone_index(message.recipient or "")).exists()
    )
    status, stopped = db.session.execute(
        select(Campaign.status, stopped_since).where(Campaign.id == message.campaign_id)
    ).one_or_none() or (None, False)
    if status == PAUSED:
        delivery.move(message.id, HELD)
        finish_if_done(message.campaign_id)
        return "held: the campaign is paused"
    if status == CANCELLED:
        delivery.move(message.id, MESSAGE_CANCELLED)
        return "not sent: the campaign was cancelled"
    if stopped:
        delivery.move(message.id, OPTED_OUT, error="The person replied STOP to campaigns.")
        finish_if_done(message.campaign_id)
        return "not sent: the person said STOP"
    return None


def finish_if_done(campaign_id: int | None) -> bool:
    """Mark a sending campaign finished if none of its messages is left to send: one
    conditional UPDATE, taking no lock a message's sender or receipt could be waiting behind.

    Two jobs settling the last two messages at the same moment may each still see the other's
    as queued; the watch job (``watch``) finishes the campaign then.
    """
    if campaign_id is None:
        return False
    left = (
        select(OutboxMessage.id)
        .where(OutboxMessage.campaign_id == campaign_id, OutboxMessage.status == QUEUED)
        .exists()
    )
    result = db.session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status == SENDING, ~left)
        .values(status=FINISHED, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    _announce_id(campaign_id)
    return True


def watch(campaign_id: int) -> str:
    """The ``campaigns.watch`` job: finish the campaign when it is done, else look again."""
    if finish_if_done(campaign_id):
        return "finished"
    status = db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    if status == SENDING:
        watch_later(campaign_id)
        return "still sending"
    return f"{status}: nothing to watch"


def watch_later(campaign_id: int) -> None:
    project_id = db.session.scalar(select(Campaign.project_id).where(Campaign.id == campaign_id))
    dispatch.enqueue(
        CAMPAIGN_WATCH.name,
        {"campaign_id": campaign_id},
        project_id=project_id,
        delay_ms=int(float(current_app.config["CAMPAIGN_WATCH_SECONDS"]) * 1000),
    )


def counts(campaign_id: int) -> dict[str, int]:
    found = dict(
        db.session.execute(
            select(OutboxMessage.status, func.count())
            .where(OutboxMessage.campaign_id == campaign_id)
            .group_by(OutboxMessage.status)
        ).all()
    )
    return {status: int(found.get(status, 0)) for status in STATUSES}


def snapshot(campaign: Campaign) -> dict:
    return {
        "campaign_id": campaign.id,
        "status": campaign.status,
        "recipients": campaign.recipients,
        "opted_out": campaign.opted_out,
        "counts": counts(campaign.id),
    }


def announce(campaign: Campaign) -> None:
    _announce_id(campaign.id)


def _announce_id(campaign_id: int) -> None:
    """Send the campaign's full state to its room once this transaction commits."""
    db.session.flush()
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    realtime.emit_after_commit(
        CAMPAIGN_CHANGED, snapshot(campaign), [delivery.campaign_room(campaign_id)]
    )

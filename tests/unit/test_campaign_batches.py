"""A campaign's messages made in chunks (one per person and language, whatever was there
before and whoever said STOP), the cost in its preview, and the audit of its actions."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.campaigns import optout, sending, services
from portal.campaigns.models import Campaign
from portal.comms.models import OutboxMessage
from portal.extensions import db
from portal.jobs.models import Job
from portal.projects.models import Project

EN, NE = "Food distribution on Friday at the school.", "शुक्रबार विद्यालयमा खाद्यान्न वितरण।"


@pytest.fixture
def project(app, make_project):
    found = make_project(status="active")
    db.session.commit()
    return found


def _people(make_beneficiary, project, count: int, phone_base: int) -> list:
    return [
        make_beneficiary(
            project,
            phone=f"984{phone_base + i:07d}",
            language=("en", "ne", "hi")[i % 3],
        )
        for i in range(count)
    ]


def _draft(project: Project, texts=None) -> Campaign:
    campaign = services.create(
        project,
        {"name": "Notice", "channel": "sms", "audience": "project"},
        texts or {"en": EN, "ne": NE},
        None,
    )
    db.session.flush()
    return campaign


def _rows(campaign_id: int) -> list:
    return db.session.execute(
        select(
            OutboxMessage.beneficiary_id,
            OutboxMessage.language,
            OutboxMessage.body,
            OutboxMessage.id,
            OutboxMessage.job_id,
        ).where(OutboxMessage.campaign_id == campaign_id)
    ).all()


_counter = iter(range(10**6))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    count=st.integers(0, 14),
    chunk=st.integers(1, 5),
    stopped=st.sets(st.integers(0, 13)),
    made_before=st.sets(st.integers(0, 13)),
    starts=st.integers(1, 3),
)
def test_each_person_gets_one_message_in_their_language_whatever_the_chunks(
    app, make_project, make_beneficiary, monkeypatch, count, chunk, stopped, made_before, starts
):
    """Any audience, chunk size, STOP list, messages made by an earlier (interrupted) start
    and number of starts: everyone not stopped has exactly one message, in their language
    (English where the campaign has no text in it), each with its own job naming it."""
    monkeypatch.setattr(sending, "CHUNK", chunk)
    try:
        _check_one_start(make_project, make_beneficiary, count, stopped, made_before, starts)
    finally:
        db.session.rollback()


def _check_one_start(make_project, make_beneficiary, count, stopped, made_before, starts):
    project = make_project(status="active")
    people = _people(make_beneficiary, project, count, next(_counter) * 100)
    for i in stopped & set(range(count)):
        optout.handle(people[i].pii.phone, "STOP")
    campaign = _draft(project)
    campaign.status = "scheduled"
    db.session.flush()
    # An earlier start that committed part of its work: some people have their message.
    for i in sorted(made_before & set(range(count)) - stopped):
        db.session.add(
            OutboxMessage(
                channel="sms",
                purpose="campaign",
                recipient=people[i].pii.phone,
                body=EN,
                provider="",
                key=f"earlier-{campaign.id}-{i}",
                campaign_id=campaign.id,
                beneficiary_id=people[i].id,
                project_id=project.id,
            )
        )
    db.session.flush()
    before = {r.beneficiary_id for r in _rows(campaign.id)}
    results = [sending.start(campaign.id) for _ in range(starts)]
    wanted = {p.id: p.language for i, p in enumerate(people) if i not in stopped}
    rows = _rows(campaign.id)
    assert sorted(r.beneficiary_id for r in rows) == sorted(wanted)
    made = [r for r in rows if r.beneficiary_id not in before]
    assert results[0] == f"{len(made)} messages queued"
    assert all(result == "0 messages queued" for result in results[1:])
    for r in made:
        expected = "ne" if wanted[r.beneficiary_id] == "ne" else "en"
        assert (r.language, r.body) == (expected, NE if expected == "ne" else EN)
        job = db.session.get(Job, r.job_id)
        assert (job.kind, json.loads(job.payload_json)) == ("campaigns.sms", {"message_id": r.id})
    assert len({r.job_id for r in made}) == len(made)
    db.session.refresh(campaign)
    assert campaign.recipients == len(wanted)
    assert campaign.opted_out == len(stopped & set(range(count)))


def test_a_start_that_dies_midway_leaves_nothing_and_its_retry_makes_all(
    app, project, make_beneficiary, monkeypatch
):
    from portal.jobs import dispatch

    monkeypatch.setattr(sending, "CHUNK", 2)
    people = _people(make_beneficiary, project, 7, 7_000_000)
    campaign = _draft(project)
    campaign.status = "scheduled"
    db.session.commit()
    real, calls = dispatch.enqueue_many, []

    def dies_on_the_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(dispatch, "enqueue_many", dies_on_the_second_chunk)
    with pytest.raises(RuntimeError):
        sending.start(campaign.id)
    db.session.rollback()
    assert _rows(campaign.id) == []
    monkeypatch.setattr(dispatch, "enqueue_many", real)
    assert sending.start(campaign.id) == "7 messages queued"
    db.session.commit()
    assert sorted(r.beneficiary_id for r in _rows(campaign.id)) == sorted(p.id for p in people)


# --- paced at the provider's rate when queued -------------------------------------------------


def _etas(broker, queue: str = "campaigns") -> dict[int, int]:
    """Job id → the time (ms) its message is due, for the messages waiting on ``queue``: when
    it was sent for one not delayed (the first), its ``eta`` for a delayed one."""
    import dramatiq
    from dramatiq.common import dq_name

    found = {}
    for name in (queue, dq_name(queue)):
        for raw in list(broker.queues[name].queue):
            message = dramatiq.Message.decode(raw)
            found[message.args[0]] = message.options.get("eta", message.message_timestamp)
    return found


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(count=st.integers(1, 9), chunk=st.integers(1, 4), rate=st.sampled_from([2, 5, 40]))
def test_the_messages_are_queued_paced_at_the_providers_rate(
    app, worker, make_project, make_beneficiary, monkeypatch, count, chunk, rate
):
    """Each message's job is due one interval (1 / rate) after the one before it, across
    chunks, so a send finds its slot when it runs instead of being put back; paused and
    resumed, the held messages are paced again."""
    monkeypatch.setattr(sending, "CHUNK", chunk)
    monkeypatch.setitem(app.config, "SMS_RATE_PER_SECOND", rate)
    app.extensions.pop("comms_rate_schedule", None)  # no slot taken: nothing ahead of them
    for queue in ("campaigns", "campaigns.DQ"):
        worker.broker.flush(queue)
    project = make_project(status="active")
    _people(make_beneficiary, project, count, next(_counter) * 100)
    campaign = _draft(project)
    campaign.status = "scheduled"
    db.session.commit()
    sending.start(campaign.id)
    db.session.commit()
    _assert_paced(worker.broker, campaign.id, rate, count)

    services.pause(campaign)
    db.session.commit()
    worker.broker.flush("campaigns.DQ")
    db.session.execute(
        OutboxMessage.__table__.update()
        .where(OutboxMessage.campaign_id == campaign.id)
        .values(status="held")
    )
    db.session.commit()
    services.resume(db.session.get(Campaign, campaign.id))
    db.session.commit()
    _assert_paced(worker.broker, campaign.id, rate, count)


def _assert_paced(broker, campaign_id: int, rate: float, count: int) -> None:
    jobs = [r.job_id for r in sorted(_rows(campaign_id), key=lambda r: r.id)]
    etas = _etas(broker)
    due = [etas[job_id] for job_id in jobs]
    assert len(due) == count
    interval = 1000 / rate
    gaps = [later - earlier for earlier, later in itertools.pairwise(due)]
    # Sent after the commit a few microseconds apart; each is due one interval after the last.
    assert all(abs(gap - interval) <= 5 for gap in gaps), gaps


# --- the cost in the preview -----------------------------------------------------------------


def _cells(page: str, language: str) -> dict[str, str]:
    row = re.search(rf'<tr data-cost-language="{language}">(.*?)</tr>', page, re.S).group(1)
    return {
        name: re.sub(r"<[^>]+>", "", re.search(rf"data-{name}>(.*?)</td>", row, re.S).group(1))
        for name in ("people", "segments", "cost")
    }


def test_the_preview_costs_each_language_and_the_total(
    app, client, login, make_user, make_project, make_beneficiary
):
    app.config["SMS_PRICE_PER_SEGMENT"] = "0.05"
    app.config["SMS_PRICE_CURRENCY"] = "USD"
    manager = make_user("programme manager")
    project = make_project(status="active", members=[manager])
    # 3 English readers (one Hindi, who gets the English text), 2 Nepali, 1 who said STOP.
    for i, language in enumerate(("en", "en", "hi", "ne", "ne", "en")):
        person = make_beneficiary(project, phone=f"98510000{i:02d}", language=language)
        if i == 5:
            optout.handle(person.pii.phone, "STOP")
    long_english = "Distribution on Friday. " * 8  # 192 GSM-7 characters: 2 segments
    campaign = _draft(project, {"en": long_english.strip(), "ne": NE})
    db.session.commit()
    login(client, manager)
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert _cells(page, "en") == {"people": "3", "segments": "6", "cost": "USD\u00a00.3000"}
    assert _cells(page, "ne") == {"people": "2", "segments": "2", "cost": "USD\u00a00.1000"}
    total = re.search(r"<tr data-cost-total>(.*?)</tr>", page, re.S).group(1)
    assert "USD\u00a00.4000" in total and "data-people>5<" in total
    assert "GSM-7" in page and "UCS-2" in page
    # The composer's preview costs the audience chosen on the form, before anything is saved.
    form = {
        "name": "Draft",
        "project_id": project.id,
        "channel": "sms",
        "audience": "filter",
        "group_id": 0,
        "gender": "",
        "language": "ne",
        "text_en": "Short.",
        "text_ne": NE,
        "action": "preview",
    }
    composed = client.post("/campaigns/new", data=form).get_data(as_text=True)
    assert _cells(composed, "ne") == {"people": "2", "segments": "2", "cost": "USD\u00a00.1000"}
    assert _cells(composed, "en")["people"] == "0"


def test_the_preview_measures_with_the_one_segment_module(app):
    from portal.campaigns.routes import previews
    from portal.messages import segments

    found = previews({"en": "a" * 161, "ne": "क" * 71}, {"en": 4, "ne": 1, "sw": 2})
    by = {item["language"]: item for item in found["items"]}
    assert by["en"]["length"] == segments.measure("a" * 161)
    assert (by["en"]["people"], by["en"]["segments"]) == (6, 12)  # Swahili readers get English
    assert (by["ne"]["people"], by["ne"]["segments"]) == (1, 2)
    assert (found["people"], found["segments"]) == (7, 14)


# --- audit -----------------------------------------------------------------------------------


def test_campaign_actions_are_audited_without_names_texts_or_numbers(
    app, client, login, make_user, make_project, make_beneficiary
):
    manager = make_user("programme manager")
    project = make_project(status="active", members=[manager])
    person = make_beneficiary(project, phone="9852000001", language="ne")
    db.session.commit()
    login(client, manager)
    data = {
        "name": "Secret Name Campaign",
        "project_id": project.id,
        "channel": "sms",
        "audience": "project",
        "group_id": 0,
        "gender": "",
        "language": "",
        "text_en": EN,
        "text_ne": NE,
        "action": "save",
    }
    assert client.post("/campaigns/new", data=data).status_code == 302
    campaign = db.session.scalar(select(Campaign).order_by(Campaign.id.desc()))
    later = {"when": "later", "at": "2099-01-01T09:00"}
    assert client.post(f"/campaigns/{campaign.id}/send", data=later).status_code == 302
    assert client.post(f"/campaigns/{campaign.id}/pause").status_code == 302
    assert client.post(f"/campaigns/{campaign.id}/resume").status_code == 302
    assert client.post(f"/campaigns/{campaign.id}/cancel").status_code == 302
    db.session.expire_all()
    entries = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action.like("campaign.%")).order_by(AuditEntry.id)
    ).all()
    assert [e.action for e in entries] == [
        "campaign.created",
        "campaign.scheduled",
        "campaign.paused",
        "campaign.resumed",
        "campaign.cancelled",
    ]
    for entry in entries:
        written = entry.summary + (entry.data or "")
        assert entry.target_id == str(campaign.id) and entry.project_id == project.id
        assert "Secret" not in written and "Friday" not in written and "शुक्रबार" not in written
        assert "9852000001" not in written and person.ref not in written
        assert entry.actor_id == manager.id
    assert json.loads(entries[0].data)["languages"] == ["en", "ne"]
    # Sent now: the start job's entry counts what it made.
    second = services.create(
        project, {"name": "Now", "channel": "sms", "audience": "project"}, {"en": EN}, manager.id
    )
    services.send(second, None, manager.id)
    db.session.commit()
    # The start job's work, run here: the first campaign's start waits in the queue for 2099.
    sending.start(second.id)
    db.session.commit()
    actions = db.session.scalars(
        select(AuditEntry.action).where(AuditEntry.target_id == str(second.id))
    ).all()
    assert {"campaign.created", "campaign.sent", "campaign.messages_made"} <= set(actions)
    made = db.session.scalar(
        select(AuditEntry).where(
            AuditEntry.action == "campaign.messages_made",
            AuditEntry.target_id == str(second.id),
        )
    )
    assert json.loads(made.data)["made"] == 1
    assert db.session.scalar(select(func.count(OutboxMessage.id))) >= 1

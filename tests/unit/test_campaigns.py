"""Campaigns: composing with a preview per language, the audience (project, group, filter),
STOP honoured for campaigns only, sending through the campaigns queue, pause, resume, cancel,
live progress over the realtime channel, and permissions."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.beneficiaries import groups
from portal.campaigns import optout, sending
from portal.campaigns.models import Campaign
from portal.comms import services as comms
from portal.comms.models import OutboxMessage
from portal.extensions import db, socketio
from portal.jobs.models import Job

EN, NE = "Food distribution on Friday at the school.", "शुक्रबार विद्यालयमा खाद्यान्न वितरण।"


@pytest.fixture
def world(app, make_user, make_project, make_beneficiary):
    manager = make_user("programme manager")
    project = make_project(status="active", members=[manager])
    other_project = make_project(status="active")
    people = [
        make_beneficiary(project, language="en", gender="female"),
        make_beneficiary(project, language="ne", gender="female"),
        make_beneficiary(project, language="ne", gender="male"),
        make_beneficiary(project, language="hi", gender="male"),  # no Hindi text: English
    ]
    make_beneficiary(other_project, language="en")  # not in the audience
    db.session.commit()
    return {"manager": manager, "project": project, "people": people}


def compose(client, project, **fields):
    data = {
        "name": "Friday distribution",
        "project_id": project.id,
        "channel": "sms",
        "audience": "project",
        "group_id": 0,
        "gender": "",
        "language": "",
        "text_en": EN,
        "text_ne": NE,
        "action": "save",
        **fields,
    }
    return client.post("/campaigns/new", data=data)


def newest() -> Campaign:
    db.session.expire_all()
    return db.session.scalar(select(Campaign).order_by(Campaign.id.desc()))


def messages_of(campaign_id: int) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.campaign_id == campaign_id)
            .order_by(OutboxMessage.beneficiary_id)
        )
    )


def test_a_campaign_goes_to_everyone_in_their_language_and_skips_stop(
    app, client, login, world, worker
):
    people = world["people"]
    optout.handle(people[2].pii.phone, "रोक")  # Nepali STOP
    db.session.commit()
    login(client, world["manager"])
    assert compose(client, world["project"]).status_code == 302
    campaign = newest()
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "3 people" in page and "1 said STOP" in page
    assert "UCS-2" in page and "GSM-7" in page
    assert client.post(f"/campaigns/{campaign.id}/send", data={"when": "now"}).status_code == 302
    worker.run("campaigns")
    campaign = newest()
    found = messages_of(campaign.id)
    assert [(m.beneficiary_id, m.language, m.body) for m in found] == [
        (people[0].id, "en", EN),
        (people[1].id, "ne", NE),
        (people[3].id, "en", EN),
    ]
    assert all(m.status == "sent" and m.provider == "outbox" for m in found)
    assert (campaign.status, campaign.recipients, campaign.opted_out) == ("finished", 3, 1)
    kinds = {db.session.get(Job, m.job_id).queue for m in found}
    assert kinds == {"campaigns"}


def test_stop_is_for_campaigns_only_codes_still_go(app, world, worker):
    person = world["people"][0]
    optout.handle(person.pii.phone, "STOP")
    message = comms.send_sms(person.pii.phone, "123456 is your code", "redemption.code")
    db.session.commit()
    worker.run("comms")
    db.session.expire_all()
    assert db.session.get(OutboxMessage, message.id).status == "sent"


@pytest.mark.parametrize(
    "word,meant",
    [
        ("STOP", "stopped"),
        (" stop. ", "stopped"),
        ("रोक", "stopped"),
        ("बन्द", "stopped"),
        ("Unsubscribe", "stopped"),
        ("start", "started"),
        ("सुरु", "started"),
        ("stop by the shop", None),
        ("BAL", None),
        ("", None),
    ],
)
def test_stop_words(word, meant):
    assert optout.keyword(word) == meant


def test_a_group_or_a_filter_narrows_the_audience(app, client, login, world, worker):
    people = world["people"]
    group = groups.create(world["project"], "Ward 3", "Friday")
    groups.add_members(group, [people[1], people[3]])
    db.session.commit()
    login(client, world["manager"])
    compose(client, world["project"], audience="group", group_id=group.id, name="Ward 3")
    by_group = newest()
    compose(client, world["project"], audience="filter", gender="female", language="ne")
    by_filter = newest()
    for campaign in (by_group, by_filter):
        client.post(f"/campaigns/{campaign.id}/send", data={"when": "now"})
    worker.run("campaigns")
    assert [m.beneficiary_id for m in messages_of(by_group.id)] == [people[1].id, people[3].id]
    assert [m.beneficiary_id for m in messages_of(by_filter.id)] == [people[1].id]


def test_bad_input_keeps_what_was_typed(app, client, login, world):
    login(client, world["manager"])
    answer = compose(client, world["project"], text_en="", text_ne=NE)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "Write the English text" in html and NE in html
    answer = compose(client, world["project"], audience="group", group_id=999)
    assert answer.status_code == 400 and "Choose one of this project" in answer.get_data(True)
    answer = compose(client, world["project"], channel="whatsapp", template="")
    assert answer.status_code == 400 and "approved message template" in answer.get_data(True)
    assert db.session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_the_preview_shows_each_language_with_its_sms_parts(app, client, login, world):
    login(client, world["manager"])
    answer = compose(client, world["project"], action="preview", text_en="x" * 161)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "161 characters · GSM-7 · 2 SMS segments" in html
    assert f"{len(NE)} characters · UCS-2 · 1 SMS" in html
    assert db.session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_pause_holds_resume_sends_cancel_stops(app, client, login, world, worker):
    login(client, world["manager"])
    compose(client, world["project"])
    campaign = newest()
    client.post(f"/campaigns/{campaign.id}/send", data={"when": "now"})
    # The start job's work, done here: the messages are made and queued, none sent yet.
    sending.start(campaign.id)
    db.session.commit()
    assert client.post(f"/campaigns/{campaign.id}/pause").status_code == 302
    worker.run("campaigns")
    assert {m.status for m in messages_of(campaign.id)} == {"held"}
    assert newest().status == "paused"
    client.post(f"/campaigns/{campaign.id}/resume")
    worker.run("campaigns")
    assert {m.status for m in messages_of(campaign.id)} == {"sent"}
    assert newest().status == "finished"
    answer = client.post(f"/campaigns/{campaign.id}/cancel", follow_redirects=True)
    assert "cannot be cancelled" in answer.get_data(as_text=True)


def test_a_cancelled_campaign_sends_nothing_more(app, client, login, world, worker):
    login(client, world["manager"])
    compose(client, world["project"])
    campaign = newest()
    client.post(f"/campaigns/{campaign.id}/send", data={"when": "now"})
    sending.start(campaign.id)
    db.session.commit()
    client.post(f"/campaigns/{campaign.id}/pause")
    worker.run("campaigns")
    client.post(f"/campaigns/{campaign.id}/cancel")
    worker.run("campaigns")
    assert {m.status for m in messages_of(campaign.id)} == {"cancelled"}
    assert newest().status == "cancelled"


def test_a_scheduled_campaign_waits_for_its_time(app, client, login, world, worker):
    login(client, world["manager"])
    compose(client, world["project"])
    campaign = newest()
    answer = client.post(
        f"/campaigns/{campaign.id}/send", data={"when": "later", "at": "2099-01-01T09:00"}
    )
    assert answer.status_code == 302
    campaign = newest()
    assert campaign.status == "scheduled" and campaign.scheduled_at.year == 2099
    assert sending.start(campaign.id) == "waiting for its time"
    assert messages_of(campaign.id) == []
    missing = client.post(f"/campaigns/{campaign.id}/send", data={"when": "later"})
    assert missing.status_code == 400


def test_starting_twice_adds_nobody_twice(app, client, login, world, worker):
    login(client, world["manager"])
    compose(client, world["project"])
    campaign = newest()
    client.post(f"/campaigns/{campaign.id}/send", data={"when": "now"})
    worker.run("campaigns")
    db.session.execute(
        Campaign.__table__.update().where(Campaign.id == campaign.id).values(status="sending")
    )
    sending.start(campaign.id)
    db.session.commit()
    assert len(messages_of(campaign.id)) == 4


def test_progress_is_live_for_those_who_may_see_it(app, client, login, world, make_user, worker):
    login(client, world["manager"])
    compose(client, world["project"])
    campaign = newest()
    client.get("/campaigns")
    sio = socketio.test_client(app, flask_test_client=client)
    ack = sio.emit("subscribe", {"topic": "campaign", "campaign_id": campaign.id}, callback=True)
    assert ack["ok"] and ack["snapshot"]["status"] == "draft"
    sio.get_received()
    client.post(f"/campaigns/{campaign.id}/send", data={"when": "now"})
    worker.run("campaigns")
    heard = sio.get_received()
    moves = [m["args"][0] for m in heard if m["name"] == "campaign.progress"]
    assert sorted((m["from"], m["to"]) for m in moves) == [("queued", "sent")] * 4
    states = [m["args"][0]["status"] for m in heard if m["name"] == "campaign.changed"]
    assert states[0] == "scheduled" and states[-1] == "finished"
    sio.disconnect()

    outsider = app.test_client()
    login(outsider, make_user("programme manager"))  # not a member of the project
    outsider.get("/campaigns")
    other = socketio.test_client(app, flask_test_client=outsider)
    refused = other.emit(
        "subscribe", {"topic": "campaign", "campaign_id": campaign.id}, callback=True
    )
    assert refused == {"ok": False, "error": "forbidden"}
    other.disconnect()


def test_campaign_pages_need_their_permissions(app, client, login, world, make_user):
    login(client, make_user("viewer"))
    assert client.get("/campaigns").status_code == 403
    assert client.get("/campaigns/new").status_code == 403
    assert compose(client, world["project"]).status_code == 403

"""The real mobile-money client and jobs against a local server in MTN MoMo's API shape:
happy path, a timeout then a retry with the same reference, a lost callback found by the
periodic check, a callback lying about the status, a FAILED transfer, an unknown reference."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.jobs.models import Job
from portal.payouts import momo, sending, services
from portal.payouts.models import FAILED, PAID, SENT, Payout
from portal.settings import services as settings
from portal.timeutil import utcnow
from tests.support.momo_server import FakeMomo


@pytest.fixture
def fake(app, payout_world):
    with FakeMomo() as server:
        settings.set_value(momo.BASE_URL, server.url)
        settings.set_value(momo.CALLBACK_BASE_URL, "http://127.0.0.1:9")
        settings.set_value(momo.TARGET_ENVIRONMENT, "sandbox")
        settings.set_value(momo.API_USER, server.api_user)
        settings.set_value(momo.API_KEY, server.api_key)
        settings.set_value(momo.SUBSCRIPTION_KEY, server.subscription_key)
        db.session.commit()
        momo.forget_tokens()
        server.hold_callbacks = True
        yield server
        momo.forget_tokens()


def pay(world, amount=150_050) -> Payout:
    payout = services.request_payout(
        world.project.id, world.vendor.id, amount, method_id=world.momo.id, narrative="Week 1"
    )
    db.session.commit()
    return payout


def status(payout_id) -> Payout:
    db.session.expire_all()
    return db.session.get(Payout, payout_id)


def deliver(client, fake) -> list[int]:
    """The held callbacks, sent to the portal's callback route as the provider would."""
    codes = []
    for url, body in fake.held:
        path = url.split("127.0.0.1:9", 1)[1]
        codes.append(client.put(path, data=body, content_type="application/json").status_code)
    fake.held.clear()
    db.session.commit()
    return codes


def test_happy_path_the_callback_leads_to_a_status_query(payout_world, fake, worker, client):
    fake.pending_for = 1  # the check right after sending still sees PENDING
    payout = pay(payout_world)
    worker.run("comms")
    assert status(payout.id).status == SENT
    transfer = fake.transfers[payout.reference]
    assert transfer["amount"] == "1500.50" and transfer["currency"] == "UGX"
    assert transfer["payee"] == {"partyIdType": "MSISDN", "partyId": "256772123456"}
    assert fake.status_queries[payout.reference] == 1

    fake.finish(payout.reference)
    assert deliver(client, fake) == [202]
    worker.run("comms")
    assert status(payout.id).status == PAID
    assert fake.status_queries[payout.reference] == 2  # the callback was checked, not believed
    actions = db.session.scalars(
        select(AuditEntry.action).where(AuditEntry.action.like("payout.%")).order_by(AuditEntry.id)
    ).all()
    assert actions == ["payout.requested", "payout.sent", "payout.callback", "payout.paid"]


def test_a_timeout_is_retried_with_the_same_reference(app, payout_world, fake, worker):
    app.config["MOMO_TIMEOUT_SECONDS"] = 1
    fake.slow_first = 2.5  # recorded by the provider, answered after the client gave up
    payout = pay(payout_world)
    worker.run("comms", timeout_ms=30_000)
    assert fake.transfer_posts == [payout.reference, payout.reference]
    assert len(fake.transfers) == 1  # the second request was the provider's 409: one transfer
    found = status(payout.id)
    assert found.status == PAID and found.send_attempts == 2
    send_job = db.session.scalar(select(Job).where(Job.kind == "payouts.send"))
    assert send_job.attempts == 2 and send_job.status == "succeeded"


def test_a_lost_callback_is_found_by_the_periodic_check(app, payout_world, fake, worker):
    fake.pending_for = 1
    fake.lose_callbacks = True
    payout = pay(payout_world)
    worker.run("comms")
    assert status(payout.id).status == SENT
    app.config["PAYOUT_CHECK_AFTER_SECONDS"] = 60
    assert sending.due_for_check() == []  # sent and asked about just now
    earlier = utcnow() - timedelta(seconds=61)
    db.session.execute(
        update(Payout)
        .where(Payout.id == payout.id)
        .values(sent_at=earlier, last_checked_at=earlier)
    )
    assert sending.due_for_check() == [payout.id]
    assert sending.sweep() == 1
    assert sending.due_for_check() == []  # asked for: not queued twice by the next sweep
    db.session.commit()
    worker.run("comms")
    assert status(payout.id).status == PAID


def test_a_callback_lying_about_the_status_is_not_trusted(payout_world, fake, worker, client):
    fake.pending_for = 100  # the provider's own status stays PENDING
    fake.lie = "SUCCESSFUL"
    payout = pay(payout_world)
    worker.run("comms")
    fake.finish(payout.reference)
    assert deliver(client, fake) == [202]
    worker.run("comms")
    assert status(payout.id).status == SENT  # the status query said PENDING
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "payout.callback"))
    assert "claims SUCCESSFUL" in entry.summary


def test_a_failed_transfer_fails_the_payout_with_the_reason(payout_world, fake, worker):
    fake.outcome["256772123456"] = ("FAILED", "PAYEE_NOT_FOUND")
    payout = pay(payout_world)
    worker.run("comms")
    found = status(payout.id)
    assert found.status == FAILED and found.failure_reason == "PAYEE_NOT_FOUND"


def test_a_callback_for_an_unknown_reference_is_refused(payout_world, fake, client):
    response = client.put(
        f"/api/payouts/momo/callback/{uuid.uuid4()}",
        json={"status": "SUCCESSFUL"},
    )
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert db.session.scalar(select(Job).where(Job.kind == "payouts.check")) is None


def test_the_provider_answering_500_is_retried_and_400_fails(payout_world, fake, worker):
    fake.fail_next = [503]
    first = pay(payout_world)
    worker.run("comms")
    assert status(first.id).status == PAID
    momo.forget_tokens()
    fake.fail_next = [400]  # the token request itself is refused for good
    second = pay(payout_world, 100)
    worker.run("comms")
    found = status(second.id)
    assert found.status == FAILED and "400" in found.failure_reason


def test_keys_are_stored_encrypted_and_never_shown(app, payout_world, fake, client, login):
    from portal.settings.models import Setting

    row = db.session.get(Setting, momo.API_KEY)
    assert row.value.startswith("v1:") and fake.api_key not in row.value
    login(client, payout_world.user)
    page = client.get("/payouts/settings").get_data(as_text=True)
    assert fake.api_key not in page and fake.subscription_key not in page
    assert page.count(">set<") == 3
    audit = db.session.scalars(
        select(AuditEntry.data).where(AuditEntry.action == "settings.changed")
    ).all()
    assert not any(fake.api_key in (d or "") for d in audit)


def test_a_callback_that_is_not_a_reference_is_not_found(payout_world, fake, client):
    for path in ("/api/payouts/momo/callback/1", "/api/payouts/momo/callback/" + "a" * 64):
        assert client.post(path, json={"status": "SUCCESSFUL"}).status_code == 404
    big = b"{" + b" " * (20 * 1024) + b"}"
    reply = client.put(
        f"/api/payouts/momo/callback/{uuid.uuid4()}", data=big, content_type="application/json"
    )
    assert reply.status_code == 413


def test_a_payout_whose_sending_gave_up_is_still_found_by_the_sweep(
    app, payout_world, fake, worker
):
    from portal.payouts.models import PENDING

    payout = pay(payout_world)
    # As if every send attempt timed out after the provider took the first request.
    db.session.execute(
        update(Job).where(Job.kind == "payouts.send").values(status="failed", attempts=6)
    )
    fake.transfers[payout.reference] = {
        "amount": "1500.50",
        "currency": "UGX",
        "externalId": payout.reference,
        "payee": {"partyIdType": "MSISDN", "partyId": "256772123456"},
    }
    earlier = utcnow() - timedelta(seconds=120)
    db.session.execute(
        update(Payout).where(Payout.id == payout.id).values(send_attempts=6, created_at=earlier)
    )
    app.config["PAYOUT_CHECK_AFTER_SECONDS"] = 60
    assert status(payout.id).status == PENDING
    assert sending.due_for_check() == [payout.id]
    sending.sweep()
    db.session.commit()
    worker.run("comms")
    assert status(payout.id).status == PAID


def test_the_settings_page_refuses_a_bad_base_url(payout_world, client, login):
    login(client, payout_world.user)
    for bad in ("ftp://x.example", "https://user:pw@x.example", "not a url"):
        reply = client.post("/payouts/settings", data={"base_url": bad})
        assert reply.status_code == 400, bad
    assert not settings.get(momo.BASE_URL)
    saved = client.post(
        "/payouts/settings",
        data={"base_url": "https://sandbox.momodeveloper.mtn.com/", "api_key": "k-123456"},
    )
    assert saved.status_code == 302
    assert settings.get(momo.BASE_URL) == "https://sandbox.momodeveloper.mtn.com"
    assert settings.get_secret(momo.API_KEY) == "k-123456"
    page = client.get("/payouts/settings").get_data(as_text=True)
    assert "k-123456" not in page and 'data-key="momo_api_key">set<' in page

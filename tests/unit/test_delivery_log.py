"""The delivery log: providers' receipts (signed, in any order, repeated), a provider that
times out, an interrupted send, WhatsApp templates, the shared send rate, and the log page."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from portal.comms import ratelimit, receipts
from portal.comms import services as comms
from portal.comms.delivery import move
from portal.comms.models import OutboxMessage
from portal.comms.whatsapp import CloudWhatsAppProvider
from portal.extensions import db
from portal.jobs.models import Job
from portal.messages import segments
from tests.support.comms_provider import FakeProviders

NUMBER = "+9779841234567"
BODY = "Distribution at the school on Friday from 9."


@pytest.fixture
def providers(app):
    with FakeProviders() as fake:
        fake.hold = True  # receipts are delivered by the test, through the test client
        app.config.update(fake.sms_settings(), SMS_TIMEOUT_SECONDS=1)
        yield fake


def queue(body=BODY, purpose="notice") -> OutboxMessage:
    message = comms.send_sms(NUMBER, body, purpose)
    db.session.commit()
    return message


def post_receipt(client, url, headers, body):
    path = url.removeprefix("http://portal.test")
    return client.post(path, data=body, headers=headers)


def reload(message_id: int) -> OutboxMessage:
    db.session.expire_all()
    return db.session.get(OutboxMessage, message_id)


# --- SMS receipts ------------------------------------------------------------------------------


def test_receipts_move_a_message_to_delivered_with_the_provider_id(app, client, providers, worker):
    message = queue()
    worker.run("comms")
    sent = reload(message.id)
    assert (sent.status, sent.provider_ref, sent.attempts) == ("sent", "SM00000001", 1)
    assert len(providers.held) == 2
    for receipt in providers.held:
        assert post_receipt(client, *receipt).status_code == 204
    done = reload(message.id)
    assert done.status == "delivered" and done.delivered_at is not None


def test_a_failed_receipt_says_why_in_words(app, client, providers, worker):
    providers.outcome[NUMBER] = "30003"
    message = queue()
    worker.run("comms")
    for receipt in providers.held:
        post_receipt(client, *receipt)
    failed = reload(message.id)
    assert (failed.status, failed.error_code) == ("failed", "30003")
    assert failed.error == "The phone was off or out of reach. (code 30003)"


def test_a_receipt_with_a_bad_signature_is_refused_and_logged_without_the_number(
    app, client, providers, worker, caplog
):
    caplog.set_level(logging.INFO)
    message = queue()
    worker.run("comms")
    url, headers, body = providers.held[-1]
    forged = dict(headers, **{"X-Twilio-Signature": "AAAA" + headers["X-Twilio-Signature"][4:]})
    answer = post_receipt(client, url, forged, body)
    assert answer.status_code == 403
    assert answer.get_json()["detail"] == "The signature does not match."
    unsigned = {k: v for k, v in headers.items() if k != "X-Twilio-Signature"}
    assert post_receipt(client, url, unsigned, body).status_code == 403
    # Signed for another message's URL: refused too.
    other = url[:-4] + "0000"
    assert post_receipt(client, other, headers, body).status_code == 403
    assert reload(message.id).status == "sent"
    assert "bad or missing signature" in caplog.text
    assert NUMBER not in caplog.text and "SM0" not in caplog.text


def test_a_receipt_for_no_message_is_404(app, client, providers):
    url = "http://portal.test/api/comms/receipts/sms/" + "0" * 36
    _, headers, body = providers.sms_receipt(url, "SM1", "delivered")
    assert post_receipt(client, url, headers, body).status_code == 404


STATES = st.lists(
    st.sampled_from(["queued", "sending", "sent", "delivered", "undelivered", "failed", "read"]),
    min_size=1,
    max_size=6,
)
RANK = {"sent": 1, "delivered": 2, "failed": 2}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=STATES)
def test_receipts_in_any_order_or_repeated_never_move_a_message_back(app, order):
    message = comms.send_sms(NUMBER, BODY, "notice")
    db.session.commit()
    move(message.id, "sent", provider_ref="SM9")
    db.session.commit()
    seen = "sent"
    for word in order:
        state = receipts.SMS_STATES[word]
        receipts.sms_receipt(message.key, {"MessageSid": "SM9", "MessageStatus": word})
        db.session.commit()
        # Final states stay; otherwise a later state wins.
        if RANK[seen] < 2 and RANK[state] > RANK[seen]:
            seen = state
        assert reload(message.id).status == seen


def test_the_twilio_signature_covers_the_url_and_every_parameter_in_any_order():
    url = "https://portal.example.org/api/comms/receipts/sms/abc?x=1"
    params = [("MessageSid", "SM1"), ("MessageStatus", "delivered"), ("ErrorCode", "")]
    signature = receipts.twilio_signature("token", url, params)
    # The scheme written out: the URL, then each name and value sorted by name, HMAC-SHA1.
    import base64
    import hashlib
    import hmac

    data = url + "ErrorCode" + "MessageSidSM1" + "MessageStatusdelivered"
    expected = base64.b64encode(hmac.new(b"token", data.encode(), hashlib.sha1).digest())
    assert signature == expected.decode()
    assert receipts.twilio_valid("token", url, list(reversed(params)), signature)
    assert not receipts.twilio_valid("token", url + "2", params, signature)
    assert not receipts.twilio_valid("other", url, params, signature)
    assert not receipts.twilio_valid("token", url, params[:2], signature)
    assert not receipts.twilio_valid("", url, params, signature)


# --- a provider that times out, an interrupted send ------------------------------------------


def test_a_provider_that_times_out_after_taking_the_message_is_not_sent_again(
    app, client, providers, worker
):
    providers.delay = 2.5  # past SMS_TIMEOUT_SECONDS (1 s read, 2 s in all)
    message = queue()
    worker.run("comms")
    review = reload(message.id)
    assert review.status == "review" and review.attempts == 1
    assert "may or may not have it" in review.error
    assert providers.posts == 1 and providers.delivered[NUMBER] == 1
    # The provider had it: its receipts settle the message.
    for receipt in providers.held:
        assert post_receipt(client, *receipt).status_code == 204
    assert reload(message.id).status == "delivered"


def test_with_an_idempotency_key_a_timed_out_send_is_repeated_safely(app, worker):
    with FakeProviders(idempotency=True) as fake:
        fake.hold = True
        app.config.update(fake.sms_settings(), SMS_TIMEOUT_SECONDS=1)
        fake.delay = 2.5
        message = queue()
        threading.Timer(1.0, lambda: setattr(fake, "delay", 0.0)).start()
        worker.run("comms")
        done = reload(message.id)
        assert done.status == "sent" and done.attempts >= 2
        assert fake.posts == 1 and fake.delivered[NUMBER] == 1  # one message, however many tries


def test_a_send_interrupted_by_a_dead_worker_goes_to_review_not_to_the_provider(
    app, providers, worker
):
    message = queue()
    # The state a worker killed between the provider's answer and its commit leaves: the job
    # was claimed once (its lease since expired) and the message has no outcome recorded.
    db.session.execute(text("update jobs set attempts = 1 where id = :id"), {"id": message.job_id})
    db.session.commit()
    worker.run("comms")
    found = reload(message.id)
    assert found.status == "review" and found.attempts == 0
    assert providers.posts == 0
    assert db.session.get(Job, message.job_id).status == "succeeded"


def test_transient_failures_are_retried_with_the_same_key_then_fail_in_words(
    app, providers, worker
):
    providers.fail_next = [503] * 6
    message = queue()
    worker.run("comms")
    failed = reload(message.id)
    assert failed.status == "failed" and failed.attempts == 6
    assert failed.error == "The SMS provider refused the message: HTTP 503 (provider code 20500)."
    assert providers.posts == 0


# --- WhatsApp --------------------------------------------------------------------------------


@pytest.fixture
def whatsapp(app):
    with FakeProviders() as fake:
        fake.hold = True
        fake.webhook_url = "http://portal.test/api/inbound/whatsapp"
        app.config.update(fake.whatsapp_settings(), WHATSAPP_VERIFY_TOKEN="verify-me")
        yield fake


def whatsapp_message(key="k-1") -> OutboxMessage:
    message = OutboxMessage(
        channel="whatsapp",
        purpose="notice",
        recipient=NUMBER,
        body="Friday, 9 o'clock",
        template="distribution_notice",
        language="ne",
        provider="cloud",
        key=key,
    )
    db.session.add(message)
    db.session.commit()
    return message


def test_whatsapp_sends_an_approved_template_and_its_webhook_settles_it(app, client, whatsapp):
    message = whatsapp_message()
    assert comms.deliver(message.id, claim=1) == "sent through cloud"
    db.session.commit()
    assert reload(message.id).provider_ref == "wamid.00000001"
    assert whatsapp.texts == [(NUMBER, "Friday, 9 o'clock")]
    for receipt in whatsapp.held:
        answer = post_receipt(client, *receipt)
        assert answer.status_code == 200
    assert reload(message.id).status == "delivered"


def test_the_whatsapp_payload_is_a_template_with_its_language_and_key():
    body = CloudWhatsAppProvider.payload(NUMBER, "hello", "notice", "ne", "k-9")
    assert body["to"] == NUMBER[1:] and body["type"] == "template"
    assert body["template"]["name"] == "notice"
    assert body["template"]["language"] == {"code": "ne"}
    assert body["template"]["components"][0]["parameters"] == [{"type": "text", "text": "hello"}]
    assert body["biz_opaque_callback_data"] == "k-9"


def test_a_whatsapp_webhook_with_a_bad_signature_is_refused(app, client, whatsapp):
    message = whatsapp_message()
    comms.deliver(message.id, claim=1)
    db.session.commit()
    url, headers, body = whatsapp.held[-1]
    bad = dict(headers, **{"X-Hub-Signature-256": "sha256=" + "0" * 64})
    assert post_receipt(client, url, bad, body).status_code == 403
    tampered = body.replace(b"delivered", b"read00000")
    assert post_receipt(client, url, headers, tampered).status_code == 403
    assert reload(message.id).status == "sent"


def test_a_whatsapp_receipt_settles_an_interrupted_send_by_its_key(app, client, whatsapp):
    message = whatsapp_message(key="k-interrupted")
    move(message.id, "review")
    db.session.commit()
    url, headers, body = whatsapp.whatsapp_receipt("wamid.77", NUMBER, "delivered", "k-interrupted")
    assert post_receipt(client, url, headers, body).get_json() == {"moved": 1, "received": 0}
    found = reload(message.id)
    assert (found.status, found.provider_ref) == ("delivered", "wamid.77")


def test_the_whatsapp_subscription_check_needs_the_verify_token(app, client, whatsapp):
    ok = client.get(
        "/api/inbound/whatsapp?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=12345"
    )
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "12345"
    wrong = client.get(
        "/api/inbound/whatsapp?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1"
    )
    assert wrong.status_code == 403


def test_whatsapp_error_codes_decide_retry_or_not(app, whatsapp):
    from portal.comms.providers import ProviderError
    from portal.comms.whatsapp import get_provider

    provider = get_provider(app.config)
    whatsapp.fail_next = [400]
    with pytest.raises(ProviderError) as refused:
        provider.send(NUMBER, "x", template="t", language="en")
    assert refused.value.permanent
    whatsapp.fail_next = [503]
    with pytest.raises(ProviderError) as busy:
        provider.send(NUMBER, "x", template="t", language="en")
    assert not busy.value.permanent and NUMBER not in str(busy.value)


# --- SMS length ------------------------------------------------------------------------------


def test_sms_length_in_gsm7_and_ucs2():
    assert segments.measure("a" * 160) == segments.Length("GSM-7", 160, 1, 160)
    assert segments.measure("a" * 161).segments == 2
    assert segments.measure("€" * 80).units == 160  # extension characters take two places
    nepali = segments.measure("तपाईंको रकम")
    assert nepali.encoding == "UCS-2" and nepali.segments == 1
    assert segments.measure("क" * 71).segments == 2
    assert segments.measure("😀" * 35).units == 70


@given(st.text(max_size=700))
def test_sms_length_fits_its_segments(body):
    found = segments.measure(body)
    single, part = segments.SINGLE[found.encoding], segments.PART[found.encoding]
    if found.units <= single:
        assert found.segments == (1 if body else 0)
    else:
        # A part never splits an escape or surrogate pair, so a part may end one place short.
        assert (found.segments - 1) * (part - 1) < found.units <= found.segments * part
    if found.encoding == "GSM-7":
        assert all(ch in segments.GSM7_BASIC or ch in segments.GSM7_EXTENSION for ch in body)


# --- the shared send rate --------------------------------------------------------------------


def _spacing(schedule, takes: int, interval: float) -> list[float]:
    waits: list[float] = []
    lock = threading.Lock()

    def take():
        wait = schedule.take("sms", interval, 5.0)
        with lock:
            waits.append(wait)

    threads = [threading.Thread(target=take) for _ in range(takes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(waits)


def test_the_memory_schedule_spaces_sends_by_the_rate():
    waits = _spacing(ratelimit.MemorySchedule(), 20, 0.05)
    gaps = [b - a for a, b in itertools.pairwise(waits)]
    assert all(gap == pytest.approx(0.05, abs=0.02) for gap in gaps)


def test_the_redis_schedule_is_one_schedule_for_every_client(redis_db):
    import redis

    key = f"test-rate-{time.monotonic_ns()}"
    clients = [redis.Redis.from_url(redis_db.url) for _ in range(3)]
    schedules = [ratelimit.RedisSchedule(c, key) for c in clients]
    # A slot a second: 30 takes reach 30 s ahead, far more than the takes themselves last, so
    # no take finds the schedule in the past (which would restart it from "now").
    assert schedules[0].take("sms", 1.0, 60.0) == 0
    first_free = int(clients[0].get(f"{key}:sms"))
    waits: list[float] = []
    lock = threading.Lock()

    def take(schedule):
        for _ in range(10):
            wait = schedule.take("sms", 1.0, 60.0)
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=take, args=(s,)) for s in schedules]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Thirty slots, one after the other, whichever client asked: the schedule moved exactly
    # 30 intervals, and the waits are one second apart (give or take the calls' own time).
    assert int(clients[0].get(f"{key}:sms")) - first_free == 30 * 1_000_000
    waits.sort()
    assert all(abs(w - k) < 0.75 for k, w in enumerate(waits, 1))
    # A slot further off than the longest wait is not taken, and moves nothing.
    assert schedules[1].take("sms", 1.0, 5.0) is None
    assert int(clients[0].get(f"{key}:sms")) - first_free == 30 * 1_000_000
    for c in clients:
        c.delete(f"{key}:sms")


def test_a_send_waits_for_its_slot(app, providers, worker):
    app.config["SMS_RATE_PER_SECOND"] = 20
    for _ in range(10):
        comms.send_sms(NUMBER, BODY, "notice")
    db.session.commit()
    worker.run("comms")
    took = providers.last_at - providers.first_at
    assert providers.posts == 10 and took >= 9 / 20 - 0.02


# --- the log page ----------------------------------------------------------------------------


def test_the_delivery_log_masks_numbers_and_never_shows_texts(
    app, client, providers, worker, make_user, login
):
    message = queue()
    worker.run("comms")
    login(client, make_user("admin"))
    page = client.get("/delivery-log")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "•••• 567" in html and NUMBER not in html and BODY not in html
    assert reload(message.id).provider_ref in html
    assert client.get("/delivery-log?status=nonsense").status_code == 400


def test_the_delivery_log_needs_its_permission(app, client, make_user, login):
    login(client, make_user("viewer"))
    assert client.get("/delivery-log").status_code == 403


def test_inbound_stop_and_start_need_the_signature(app, client, providers):
    """STOP and START arrive on the one inbound webhook (``portal.comms.inbound``); the
    confirmation goes through the queue like every reply."""
    from portal.campaigns import optout

    app.config["PUBLIC_BASE_URL"] = "http://portal.test"
    url = "http://portal.test/api/inbound/sms"
    form = {"From": NUMBER, "Body": "Stop", "MessageSid": "SM5"}
    signature = receipts.twilio_signature(providers.token, url, form.items())
    bad = client.post("/api/inbound/sms", data=form, headers={"X-Twilio-Signature": "x"})
    assert bad.status_code == 403 and not optout.is_opted_out(NUMBER)
    answer = client.post("/api/inbound/sms", data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200
    assert optout.is_opted_out(NUMBER)
    form.update(Body="START", MessageSid="SM6")
    signature = receipts.twilio_signature(providers.token, url, form.items())
    client.post("/api/inbound/sms", data=form, headers={"X-Twilio-Signature": signature})
    assert not optout.is_opted_out(NUMBER)
    raw = json.dumps(db.session.execute(text("select * from campaign_opt_outs")).all())
    assert NUMBER not in raw and urlencode({"n": NUMBER}) not in raw

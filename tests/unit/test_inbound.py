"""Inbound SMS and WhatsApp: signatures, what a message means (BAL, STOP/START, grievance,
unknown number), replies through the outbox, caps, and provider retries."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.campaigns.models import OptOut
from portal.comms import balance, signatures
from portal.comms.inbound_models import InboundMessage
from portal.comms.models import OutboxMessage
from portal.extensions import db
from portal.grievances.models import Grievance
from tests.support import chain

TOKEN = "inbound-test-token"
SECRET = "whatsapp-app-secret"
URL = "http://portal.test/api/inbound/sms"


@pytest.fixture
def inbound_app(app):
    app.config.update(
        INBOUND_SMS_AUTH_TOKEN=TOKEN,
        WHATSAPP_APP_SECRET=SECRET,
        WHATSAPP_VERIFY_TOKEN="verify-me",
        INBOUND_REPLY_NUMBER_LIMITS="10 per day",
        INBOUND_REPLY_UNKNOWN_LIMITS="1 per day",
        INBOUND_REPLY_TOTAL_LIMITS="1000 per hour",
    )
    return app


@pytest.fixture
def person(inbound_app, make_project, make_beneficiary):
    project = make_project(name="Winter food", status="active", currency="NPR")
    someone = make_beneficiary(project=project, phone="9841000001")
    chain.pretend_deployed(project)
    chain.entitle(project, someone, 150_000)
    db.session.commit()
    return someone


def signed_post(client, params: dict, *, token: str = TOKEN, url: str = URL, header=True):
    headers = {}
    if header:
        headers["X-Twilio-Signature"] = signatures.twilio_signature(url, params.items(), token)
    return client.post(
        "/api/inbound/sms",
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers=headers,
    )


def sms(client, body: str, sid: str = "SM1", sender: str = "+9779841000001"):
    return signed_post(client, {"MessageSid": sid, "From": sender, "Body": body, "To": "+1555"})


def outbox() -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# ------------------------------------------------------------------------------- signatures


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),
        ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
    ],
)
def test_twilio_signature_matches_the_published_vectors(caller, expected):
    # Twilio's worked example (token, URL with a query string, a call's params), with the two
    # caller numbers its documentation and its SDK's tests have used.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": caller,
        "Digits": "1234",
        "From": caller,
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert signatures.twilio_signature(url, params.items(), "12345") == expected


def test_hub_signature_is_the_hex_hmac_of_the_body():
    body = b'{"object":"whatsapp_business_account"}'
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signatures.hub_signature(body, "s3cret") == expected
    assert signatures.hub_valid(body, "s3cret", expected.upper().replace("SHA256", "sha256"))
    assert not signatures.hub_valid(body + b" ", "s3cret", expected)
    assert not signatures.hub_valid(body, None, expected)
    assert not signatures.hub_valid(body, "s3cret", None)


_param = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)


@given(params=st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,8}", fullmatch=True), _param))
def test_a_signature_holds_for_its_params_and_no_changed_ones(params):
    sig = signatures.twilio_signature(URL, params.items(), TOKEN)
    assert signatures.twilio_valid(URL, list(params.items())[::-1], TOKEN, sig)  # order-free
    assert not signatures.twilio_valid(URL, params.items(), "other-token", sig)
    assert not signatures.twilio_valid(URL + "x", params.items(), TOKEN, sig)
    changed = {**params, "Body": params.get("Body", "") + "!"}
    assert not signatures.twilio_valid(URL, changed.items(), TOKEN, sig)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_param, tamper=st.sampled_from(["none", "bad", "missing", "token"]))
def test_the_webhook_refuses_what_is_not_signed_and_stores_nothing(
    inbound_app, person, body, tamper
):
    client = inbound_app.test_client()
    params = {"MessageSid": "SMhyp", "From": "+9779841000001", "Body": body}
    if tamper == "none":
        response = signed_post(client, params)
        assert response.status_code == 200
        db.session.query(InboundMessage).delete()
        db.session.query(Grievance).delete()
        db.session.query(OutboxMessage).delete()
        db.session.commit()
        return
    if tamper == "bad":
        response = client.post(
            "/api/inbound/sms", data=params, headers={"X-Twilio-Signature": "AAAA"}
        )
    elif tamper == "missing":
        response = signed_post(client, params, header=False)
    else:
        response = signed_post(client, params, token="not-the-token")
    assert response.status_code == 403
    assert response.is_json and response.json["status"] == 403
    assert count(InboundMessage) == 0 and count(OutboxMessage) == 0 and count(Grievance) == 0


def test_no_configured_token_refuses_every_call(inbound_app, person, client):
    inbound_app.config.update(INBOUND_SMS_AUTH_TOKEN=None, SMS_TOKEN=None)
    assert sms(client, "BAL").status_code == 403
    assert count(InboundMessage) == 0


def test_the_signed_url_is_the_public_one(inbound_app, person, client):
    # Behind a proxy the request's own host is not what the provider called.
    params = {"MessageSid": "SMurl", "From": "+9779841000001", "Body": "BAL"}
    wrong = "http://localhost/api/inbound/sms"
    assert signed_post(client, params, url=wrong).status_code == 403
    assert signed_post(client, params).status_code == 200


# ---------------------------------------------------------------------------- BAL and words


@pytest.mark.parametrize(
    "text",
    [
        "BAL",
        "bal",
        " Bal ",
        "B A L",
        "bal.",
        "BALANCE",
        "Balance!",
        "ｂａｌ",
        "ब्यालेन्स",
        "ब्यालेंस",
        "बैलेन्स",
        "बाँकी",
        "बांकी",
        "मौज्दात",
        "ब्\u200dयालेन्स",
        "baki",
        "byalens",
    ],
)
def test_balance_words(text):
    assert balance.asks_balance(text)


@pytest.mark.parametrize(
    "text", ["", "balance please", "BAL?? my code did not come", "ball", "halo", "बाल"]
)
def test_not_balance_words(text):
    assert not balance.asks_balance(text)


def test_bal_replies_with_the_balance_in_english(person, client):
    assert sms(client, " bal ").status_code == 200
    [reply] = outbox()
    assert reply.purpose == "inbound.reply.balance"
    assert reply.recipient == "+9779841000001"
    assert reply.body == "Your balance: NPR\u00a01,500.00 left to spend."
    row = db.session.scalar(select(InboundMessage))
    assert row.kind == "balance" and row.reply_message_id == reply.id
    assert row.beneficiary_id == person.id
    assert count(Grievance) == 0


def test_bal_in_nepali_answers_in_nepali_per_project(person, client, make_project):
    second = make_project(name="Seeds", status="active", currency="NPR")
    from portal.beneficiaries import services as beneficiaries

    beneficiaries.add_to_project(person, second)
    chain.pretend_deployed(second)
    chain.entitle(second, person, 2_500_00)
    person.language = "ne"
    db.session.commit()
    assert sms(client, "ब्यालेन्स").status_code == 200
    [reply] = outbox()
    assert reply.body.splitlines() == [
        "तपाईंको बाँकी रकम:",
        "Seeds: NPR\u00a0२,५००.००",
        "Winter food: NPR\u00a0१,५००.००",
    ]


def test_an_unknown_number_gets_one_generic_reply_and_no_data(person, client):
    for n in range(3):
        assert sms(client, "BAL", sid=f"SMu{n}", sender="+9779841999999").status_code == 200
    [reply] = outbox()
    assert "not registered" in reply.body and "1,500" not in reply.body
    assert count(InboundMessage) == 3 and count(Grievance) == 0
    kinds = set(db.session.scalars(select(InboundMessage.kind)))
    assert kinds == {"unknown"}
    withheld = db.session.scalars(select(InboundMessage.reply_withheld)).all()
    assert sorted(withheld) == ["", "over the number's cap", "over the number's cap"]


def test_anything_else_is_a_grievance_with_a_reference(person, client):
    assert sms(client, "The shop charged me twice").status_code == 200
    grievance = db.session.scalar(select(Grievance))
    assert grievance.source == "sms" and grievance.beneficiary_id == person.id
    assert grievance.description == "The shop charged me twice"
    assert grievance.project_id is not None
    [reply] = outbox()
    assert grievance.ref in reply.body and reply.purpose == "inbound.reply.grievance"
    # Encrypted at rest: the raw column holds no word of it.
    raw = db.session.execute(db.text("SELECT description FROM grievances")).scalar()
    assert "charged" not in raw


def test_stop_and_start_switch_campaigns_only(person, client):
    from portal.comms import inbound

    index = person.pii.phone_index
    assert sms(client, "STOP", sid="SM-stop").status_code == 200
    assert inbound.opted_out(index)
    assert db.session.scalar(select(OptOut).where(OptOut.phone_index == index)) is not None
    # Balance still answered after STOP.
    assert sms(client, "BAL", sid="SM-bal").status_code == 200
    assert outbox()[-1].purpose == "inbound.reply.balance"
    assert sms(client, "start", sid="SM-start").status_code == 200
    assert not inbound.opted_out(index)
    assert count(Grievance) == 0


def test_a_retried_webhook_is_handled_once(person, client):
    for _ in range(3):
        assert sms(client, "My card is lost", sid="SMsame").status_code == 200
    assert count(InboundMessage) == 1 and count(Grievance) == 1 and len(outbox()) == 1


def test_reply_caps_per_number_and_overall(inbound_app, person, client, make_beneficiary):
    inbound_app.config.update(
        INBOUND_REPLY_NUMBER_LIMITS="2 per day", INBOUND_REPLY_TOTAL_LIMITS="3 per hour"
    )
    other = make_beneficiary(phone="9841000002")
    db.session.commit()
    for n in range(4):
        sms(client, "BAL", sid=f"SMa{n}")
    assert len(outbox()) == 2  # the number's cap
    for n in range(3):
        sms(client, "BAL", sid=f"SMb{n}", sender=other.pii.phone)
    assert len(outbox()) == 3  # the overall cap
    # Over a cap the message is still stored, with why no reply went.
    reasons = db.session.scalars(
        select(InboundMessage.reply_withheld).order_by(InboundMessage.id)
    ).all()
    assert reasons == [
        "",
        "",
        "over the number's cap",
        "over the number's cap",
        "",
        "over the overall cap",
        "over the overall cap",
    ]
    # A grievance over the cap is still recorded.
    sms(client, "Please call me", sid="SMc")
    assert count(Grievance) == 1 and len(outbox()) == 3


def test_the_caps_are_keyed_on_the_blind_index_not_the_number(person, client):
    from portal.quotas.models import QuotaHit

    sms(client, "BAL")
    keys = db.session.scalars(select(QuotaHit.key)).all()
    assert keys and all("9841000001" not in k for k in keys)
    assert f"phone:{person.pii.phone_index}" in keys


# ----------------------------------------------------------------------------------- WhatsApp


def whatsapp_body(message_id: str, sender: str, text: str) -> bytes:
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "messages": [
                                    {
                                        "from": sender,
                                        "id": message_id,
                                        "type": "text",
                                        "text": {"body": text},
                                    }
                                ],
                                "statuses": [{"id": "wamid.other", "status": "delivered"}],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def whatsapp_post(client, body: bytes, signature: str | None):
    headers = {"X-Hub-Signature-256": signature} if signature else {}
    return client.post(
        "/api/inbound/whatsapp", data=body, content_type="application/json", headers=headers
    )


def test_whatsapp_messages_are_signed_and_handled_once(person, client):
    body = whatsapp_body("wamid.1", "9779841000001", "BAL")
    assert whatsapp_post(client, body, None).status_code == 403
    assert whatsapp_post(client, body, signatures.hub_signature(body, "wrong")).status_code == 403
    assert count(InboundMessage) == 0
    good = signatures.hub_signature(body, SECRET)
    for _ in range(2):
        assert whatsapp_post(client, body, good).status_code == 200
    [row] = db.session.scalars(select(InboundMessage)).all()
    assert row.channel == "whatsapp" and row.kind == "balance"
    assert row.beneficiary_id == person.id
    assert len(outbox()) == 1


def test_whatsapp_verification_handshake(inbound_app, client):
    ok = client.get(
        "/api/inbound/whatsapp",
        query_string={
            "hub.mode": "subscribe",
            "hub.verify_token": "verify-me",
            "hub.challenge": "42",
        },
    )
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "42"
    bad = client.get(
        "/api/inbound/whatsapp",
        query_string={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "42"},
    )
    assert bad.status_code == 403


def test_whatsapp_odd_payloads_are_skipped_not_500(person, client):
    # Not an object at all: refused as malformed (the provider never sends one).
    odd = b"[]"
    assert whatsapp_post(client, odd, signatures.hub_signature(odd, SECRET)).status_code == 400
    for payload in (
        b'{"entry": 3}',
        b'{"entry":[{"changes":[{"value":{"messages":[1]}}]}]}',
    ):
        assert (
            whatsapp_post(client, payload, signatures.hub_signature(payload, SECRET)).status_code
            == 200
        )
    bad = b"not json"
    assert whatsapp_post(client, bad, signatures.hub_signature(bad, SECRET)).status_code == 400
    assert count(InboundMessage) == 0


def test_a_whatsapp_photo_without_words_is_still_heard(person, client):
    body = json.dumps(
        {
            "entry": [
                {
                    "changes": [
                        {
                            "value": {
                                "messages": [
                                    {
                                        "from": "9779841000001",
                                        "id": "wamid.photo",
                                        "type": "image",
                                        "image": {"id": "media-1", "mime_type": "image/jpeg"},
                                    }
                                ]
                            }
                        }
                    ]
                }
            ]
        }
    ).encode()
    assert whatsapp_post(client, body, signatures.hub_signature(body, SECRET)).status_code == 200
    grievance = db.session.scalar(select(Grievance))
    assert grievance.source == "whatsapp"
    assert grievance.description == "(a WhatsApp message with no text: image)"


# Any JSON a webhook may carry: objects, lists and scalars nested anyhow, with the keys the
# parsers look for among them.
_KEYS = st.sampled_from(["entry", "changes", "value", "messages", "statuses", "id", "from", "type"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_JSON)
def test_whatsapp_parsers_take_any_json_without_an_error(payload):
    from portal.comms import inbound_routes, receipts

    for status in receipts.whatsapp_statuses(payload):
        assert isinstance(status, dict)
    for message_id, sender, text in inbound_routes.whatsapp_messages(payload):
        assert isinstance(message_id, str) and isinstance(sender, str) and isinstance(text, str)

"""Inbound messages on PostgreSQL under real concurrency: many provider deliveries at the same
instant, each its own request and connection. The reply caps count exactly, and a webhook
delivered many times at once is handled once."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from tests.support import chain, pg_race

pytestmark = [pytest.mark.integration, pytest.mark.pg_heavy]

THREADS = 16  # within the pool of 10 plus its overflow of 10
TOKEN = "inbound-pg-token"
URL = "http://portal.test/api/inbound/sms"


@pytest.fixture(scope="module")
def app(app_factory, pg_url):
    return app_factory(
        pg_url,
        PUBLIC_BASE_URL="http://portal.test",
        INBOUND_SMS_AUTH_TOKEN=TOKEN,
        INBOUND_REPLY_NUMBER_LIMITS="3 per day",
        INBOUND_REPLY_UNKNOWN_LIMITS="1 per day",
        INBOUND_REPLY_TOTAL_LIMITS="1000 per hour",
        INBOUND_WEBHOOK_RATE_LIMIT="10000 per minute",
    )


def _person(app) -> str:
    """A beneficiary with an entitlement; their number in E.164."""
    from portal.accounts import services as accounts
    from portal.beneficiaries import services as beneficiaries
    from portal.extensions import db
    from portal.projects import services as projects

    with app.app_context():
        roles = accounts.seed_roles()
        user = accounts.create_user(
            f"inbound-{secrets.token_hex(4)}@example.org",
            "Inbound",
            "a-long-test-pw-42",
            roles["admin"],
        )
        project = projects.create({"name": f"Inbound {secrets.token_hex(3)}", "type": "cva"}, user)
        projects.change_status(project, "active")
        person = beneficiaries.create(
            {"name": "Asker", "phone": f"98{41000000 + secrets.randbelow(8_000_000):08d}"},
            project=project,
        )
        chain.pretend_deployed(project)
        chain.entitle(project, person, 100_000)
        phone = person.pii.phone
        db.session.commit()
        return phone


def _post(app, sid: str, sender: str, body: str) -> int:
    from portal.comms.signatures import twilio_signature

    params = {"MessageSid": sid, "From": sender, "Body": body}
    response = app.test_client().post(
        "/api/inbound/sms",
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": twilio_signature(URL, params.items(), TOKEN)},
    )
    return response.status_code


def _at_once(work) -> list:
    def contender(i: int, go):
        go()
        return work(i)

    return pg_race.race(THREADS, contender, barrier_timeout=30, join_seconds=90)


def _count(app, model, *where) -> int:
    from portal.extensions import db

    with app.app_context():
        try:
            return db.session.scalar(select(func.count()).select_from(model).where(*where))
        finally:
            db.session.remove()


def test_the_number_cap_is_exact_under_concurrency(app):
    from portal.comms.inbound_models import InboundMessage

    phone = _person(app)
    tag = secrets.token_hex(4)
    codes = _at_once(lambda i: _post(app, f"SM{tag}{i}", phone, "BAL"))
    assert codes == [200] * THREADS
    assert (
        _count(app, InboundMessage, InboundMessage.provider_message_id.like(f"SM{tag}%")) == THREADS
    )
    replies = _count(
        app,
        InboundMessage,
        InboundMessage.provider_message_id.like(f"SM{tag}%"),
        InboundMessage.reply_message_id.is_not(None),
    )
    assert replies == 3


def _forget_total(app) -> None:
    from portal.comms.inbound import TOTAL_CAP
    from portal.extensions import db
    from portal.quotas.models import QuotaHit

    with app.app_context():
        db.session.execute(db.delete(QuotaHit).where(QuotaHit.bucket == TOTAL_CAP.bucket))
        db.session.commit()
        db.session.remove()


def test_the_overall_cap_is_exact_across_numbers(app):
    from portal.comms.inbound_models import InboundMessage

    _forget_total(app)  # the module's other tests' replies counted towards it too
    app.config["INBOUND_REPLY_TOTAL_LIMITS"] = "5 per hour"
    try:
        tag = secrets.token_hex(4)
        # Unknown numbers, one message each: only the overall cap can hold them.
        senders = [f"+97798{40000000 + secrets.randbelow(9_000_000):08d}" for _ in range(THREADS)]
        codes = _at_once(lambda i: _post(app, f"SX{tag}{i}", senders[i], "hello"))
        assert codes == [200] * THREADS
        mine = InboundMessage.provider_message_id.like(f"SX{tag}%")
        assert _count(app, InboundMessage, mine) == THREADS
        assert _count(app, InboundMessage, mine, InboundMessage.reply_message_id.is_not(None)) == 5
        withheld = _count(app, InboundMessage, mine, InboundMessage.reply_withheld != "")
        assert withheld == THREADS - 5
    finally:
        app.config["INBOUND_REPLY_TOTAL_LIMITS"] = "1000 per hour"


def test_a_webhook_delivered_many_times_at_once_is_handled_once(app):
    from portal.comms.inbound_models import InboundMessage
    from portal.comms.models import OutboxMessage
    from portal.grievances.models import Grievance

    phone = _person(app)
    sid = f"SMdup{secrets.token_hex(4)}"
    before_grievances = _count(app, Grievance)
    before_out = _count(app, OutboxMessage)
    codes = _at_once(lambda i: _post(app, sid, phone, "The shop refused my code"))
    assert codes == [200] * THREADS
    assert _count(app, InboundMessage, InboundMessage.provider_message_id == sid) == 1
    assert _count(app, Grievance) == before_grievances + 1
    assert _count(app, OutboxMessage) == before_out + 1

"""One-time codes of redemptions: random, stored only as a keyed hash bound to the redemption
and its amount, five minutes, one use, five wrong tries, limited resends, never in the logs."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from portal import crypto
from portal.audit.models import AuditEntry
from portal.comms.models import OutboxMessage
from portal.errors import Conflict, ValidationFailed
from portal.extensions import db
from portal.jobs.models import Job
from portal.redemptions import codes
from portal.redemptions import services as redemptions
from portal.redemptions.models import ACCEPTED, Redemption
from portal.timeutil import utcnow
from tests.support import chain

CODE = re.compile(r"\b(\d{6})\b")


@pytest.fixture
def world(app, make_project, make_beneficiary, make_vendor):
    # The project's contract is pretended, not on the chain: the transfer is left to the job,
    # the path a redemption takes when the chain cannot be reached from the request.
    app.config["REDEMPTION_SIGN_IN_REQUEST"] = False
    project = make_project(status="active")
    person = make_beneficiary(project=project)
    vendor = make_vendor(project=project, status="approved")
    pc = chain.pretend_deployed(project)
    chain.entitle(project, person, 10_000)
    db.session.commit()
    return project, pc, person, vendor


def start(world, amount=1_250) -> Redemption:
    project, pc, person, vendor = world
    redemption = redemptions.start(vendor, project, pc, person, amount, "phone")
    db.session.commit()
    return redemption


def sent_code() -> str:
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
    return CODE.search(message.body).group(1)


def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def confirm(world, redemption, code):
    vendor = world[3]
    result = redemptions.confirm(vendor, redemption.id, code)
    db.session.commit()
    return result


def age(redemption, **delta) -> None:
    """Move the redemption's clock back, as if time had passed."""
    row = db.session.get(Redemption, redemption.id, populate_existing=True)
    row.code_expires_at -= timedelta(**delta)
    row.last_sent_at -= timedelta(**delta)
    db.session.commit()


def test_codes_are_six_random_digits():
    made = {codes.new_code() for _ in range(300)}
    assert all(len(c) == 6 and c.isdigit() for c in made)
    assert len(made) > 290  # drawn afresh each time, never a fixed value


def test_clean_accepts_what_people_type():
    assert codes.clean(" 123 456 ") == "123456"
    assert codes.clean("123-456") == "123456"
    for bad in ("12345", "1234567", "12a456", "", None, "１２３４５６"):
        assert codes.clean(bad) is None


def test_the_hash_binds_purpose_ids_amount_and_needs_the_key(app):
    base = codes.digest("redemption", 1, 1250, code="123456")
    assert base != codes.digest("redemption", 1, 1251, code="123456")
    assert base != codes.digest("redemption", 2, 1250, code="123456")
    assert base != codes.digest("vendor.sign_in", 1, 1250, code="123456")
    assert base != codes.digest("redemption", 1, 1250, code="123457")
    assert crypto.derived_key("otp") not in (
        crypto.derived_key("index"),
        crypto.derived_key("chain"),
    )
    crypto.configure(crypto.generate_key())
    try:
        assert base != codes.digest("redemption", 1, 1250, code="123456")
    finally:
        crypto.configure(app.config["PII_KEY"])


def test_only_the_hash_is_stored(world):
    redemption = start(world)
    code = sent_code()
    assert redemption.code_hash == codes.digest("redemption", redemption.id, 1250, code=code)
    assert code not in redemption.code_hash
    raw = db.session.execute(text("select body, recipient from outbox_messages")).one()
    assert code not in raw.body and raw.body.startswith("v1:")  # encrypted at rest
    assert world[2].pii.phone not in raw.recipient


def test_the_right_code_is_accepted_once(world):
    redemption = start(world)
    code = sent_code()
    assert confirm(world, redemption, code).ok
    again = confirm(world, redemption, code)
    assert again.outcome == codes.USED
    row = db.session.get(Redemption, redemption.id)
    assert (row.status, row.code_hash) == (ACCEPTED, None)


def test_a_code_expires_after_five_minutes(world):
    redemption = start(world)
    code = sent_code()
    assert redemption.code_expires_at - redemption.created_at == timedelta(minutes=5)
    age(redemption, minutes=5, seconds=1)
    assert confirm(world, redemption, code).outcome == codes.EXPIRED
    assert db.session.get(Redemption, redemption.id).status == "expired"


def test_the_code_is_bound_to_the_amount(world):
    redemption = start(world, amount=1_000)
    code = sent_code()
    # Whoever changes the amount behind the code's back voids the code.
    db.session.execute(
        update(Redemption).where(Redemption.id == redemption.id).values(amount=9_000)
    )
    db.session.commit()
    assert confirm(world, redemption, code).outcome == codes.WRONG
    assert db.session.get(Redemption, redemption.id).status == "awaiting_code"


def test_a_code_opens_only_its_own_redemption(world):
    first = start(world, amount=100)
    first_code = sent_code()
    project, pc, person, vendor = world
    second = redemptions.start(vendor, project, pc, person, 200, "phone")
    db.session.commit()
    assert db.session.get(Redemption, first.id).status == "cancelled"  # replaced by the new one
    assert confirm(world, second, first_code).outcome == codes.WRONG


def test_five_wrong_tries_lock_the_code(world):
    redemption = start(world)
    code = sent_code()
    lefts = [confirm(world, redemption, other_than(code)) for _ in range(4)]
    assert [r.tries_left for r in lefts] == [4, 3, 2, 1]
    assert all(r.outcome == codes.WRONG for r in lefts)
    assert confirm(world, redemption, other_than(code)).outcome == codes.LOCKED
    # Locked: even the right code no longer works, and nothing was reserved.
    assert confirm(world, redemption, code).outcome == codes.LOCKED
    row = db.session.get(Redemption, redemption.id)
    assert (row.status, row.tries) == ("locked", 5)
    assert redemptions.entitlement(row.project_id, row.beneficiary_id).redeemed == 0


def test_malformed_input_is_not_counted_as_a_try(world):
    redemption = start(world)
    with pytest.raises(ValidationFailed):
        redemptions.confirm(world[3], redemption.id, "12ab")
    assert db.session.get(Redemption, redemption.id).tries == 0


def test_resends_are_spaced_and_limited(world, app, monkeypatch):
    app.config["BENEFICIARY_CODE_LIMITS"] = "10 per minute"  # the row's own limits, here
    vendor = world[3]
    redemption = start(world)
    old = sent_code()
    sent_at = db.session.get(Redemption, redemption.id, populate_existing=True).last_sent_at
    with monkeypatch.context() as frozen:  # the clock stands at the send, however slow the host
        frozen.setattr(codes, "utcnow", lambda: sent_at)
        with pytest.raises(Conflict, match="Wait 30 seconds"):
            redemptions.resend(vendor, redemption.id)
    db.session.rollback()
    for _ in range(3):
        age(redemption, seconds=31)
        redemptions.resend(vendor, redemption.id)
        db.session.commit()
    new = sent_code()
    assert db.session.get(Redemption, redemption.id).resends == 3
    age(redemption, seconds=31)
    with pytest.raises(Conflict, match="No more codes"):
        redemptions.resend(vendor, redemption.id)
    db.session.rollback()
    if new != old:
        assert confirm(world, redemption, old).outcome == codes.WRONG  # the old code is void
    assert confirm(world, redemption, new).ok
    assert db.session.scalar(select(db.func.count()).select_from(OutboxMessage)) == 4


def test_wrong_tries_are_not_forgiven_by_a_resend(world):
    vendor = world[3]
    redemption = start(world)
    code = sent_code()
    for _ in range(4):
        confirm(world, redemption, other_than(code))
    age(redemption, seconds=31)
    redemptions.resend(vendor, redemption.id)
    db.session.commit()
    assert confirm(world, redemption, other_than(sent_code())).outcome == codes.LOCKED


def test_no_code_or_number_in_logs_jobs_or_audit(world, worker, caplog):
    caplog.set_level(logging.DEBUG)
    redemption = start(world)
    code = sent_code()
    phone = world[2].pii.phone
    confirm(world, redemption, other_than(code))
    with pytest.raises(ValidationFailed) as refused:
        redemptions.confirm(world[3], redemption.id, code + "9")
    db.session.rollback()
    assert confirm(world, redemption, code).ok
    worker.run("comms")
    texts = [caplog.text, str(refused.value)]
    for job in db.session.scalars(select(Job)):
        texts += [job.payload_json, job.result_json or "", job.error or ""]
    for entry in db.session.scalars(select(AuditEntry)):
        texts += [entry.summary, entry.data]
    blob = "\n".join(texts)
    assert code not in blob
    assert phone not in blob and phone[-9:] not in blob


def test_a_message_with_a_code_is_blanked_once_the_code_expires(world, worker):
    redemption = start(world)
    worker.run("comms")
    message = db.session.scalar(select(OutboxMessage))
    assert message.status == "sent"
    assert message.purge_after == db.session.get(Redemption, redemption.id).code_expires_at
    db.session.execute(update(OutboxMessage).values(purge_after=utcnow() - timedelta(seconds=1)))
    from portal.comms import services as comms

    assert comms.purge_expired() == 1
    db.session.commit()
    db.session.expire_all()
    message = db.session.scalar(select(OutboxMessage))
    assert (message.body, message.recipient) == (None, None)
    assert message.purged_at is not None and message.status == "sent"

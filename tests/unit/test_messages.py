"""Messages to beneficiaries: SMS segments (GSM-7 and UCS-2), template placeholders checked on
save, the editor and its preview, and one message per effect in the beneficiary's language."""

from __future__ import annotations

import math
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.comms.models import OutboxMessage
from portal.disbursements.models import Disbursement, DisbursementBatch, DisbursementItem
from portal.extensions import db
from portal.messages import kinds, notices, segments, templates
from portal.messages.models import MessageTemplate
from portal.redemptions.models import Redemption
from portal.timeutil import utcnow
from tests.support import chain

GSM_BASIC = sorted(segments.GSM7_BASIC)
GSM_EXT = sorted(segments.GSM7_EXTENSION)


# --- segments -----------------------------------------------------------------------------


def test_segment_boundaries():
    assert segments.measure("a" * 160) == segments.Length("GSM-7", 160, 1, 160)
    assert segments.measure("a" * 161).segments == 2
    assert segments.measure("a" * 306).segments == 2 and segments.measure("a" * 307).segments == 3
    assert segments.measure("€" * 80).units == 160 and segments.measure("€" * 80).segments == 1
    assert segments.measure("क" * 70) == segments.Length("UCS-2", 70, 1, 70)
    assert segments.measure("क" * 71).segments == 2
    assert segments.measure("क" * 134).segments == 2 and segments.measure("क" * 135).segments == 3
    # One Devanagari letter makes the whole message UCS-2.
    assert segments.measure("a" * 100 + "क").encoding == "UCS-2"
    # An escape pair is never split: 152 plain septets then "€" start a second part there.
    assert segments.measure("a" * 152 + "€" + "a" * 10).segments == 2
    assert segments.measure("a" * 152 + "€" + "a" * 152).segments == 3
    assert segments.measure("") == segments.Length("GSM-7", 0, 0, 0)


def _parts(sizes: list[int], single: int, part: int) -> int:
    """A reference count: fill parts greedily, never splitting one character's units."""
    total = sum(sizes)
    if total == 0:
        return 0
    if total <= single:
        return 1
    parts, used = 1, 0
    for size in sizes:
        if used + size > part:
            parts, used = parts + 1, 0
        used += size
    return parts


@given(st.lists(st.sampled_from(GSM_BASIC + GSM_EXT), max_size=700))
def test_gsm_texts_are_counted_in_septets(chars):
    text = "".join(chars)
    length = segments.measure(text)
    sizes = [2 if c in segments.GSM7_EXTENSION else 1 for c in chars]
    assert length.encoding == "GSM-7" and length.units == sum(sizes)
    assert length.segments == _parts(sizes, 160, 153)
    # Bounds any count must meet: enough room, and never more than one part per 152 units.
    if length.units > 160:
        assert length.segments >= math.ceil(length.units / 153)
        assert length.segments <= math.ceil(length.units / 152)


@given(st.text(min_size=1, max_size=400).filter(lambda t: segments.encoding_of(t) == "UCS-2"))
def test_other_texts_are_counted_in_utf16_units(text):
    length = segments.measure(text)
    assert length.units == len(text.encode("utf-16-le")) // 2
    sizes = [2 if ord(c) > 0xFFFF else 1 for c in text]
    assert length.segments == _parts(sizes, 70, 67)


# --- placeholders -------------------------------------------------------------------------


def test_placeholders_are_checked():
    kind = kinds.RECEIPT
    assert templates.problems(kind, "You paid {amount} at {shop}.") == []
    assert "Unknown placeholder: {code}" in templates.problems(kind, "Code {code}")[0]
    assert templates.problems(kind, "Paid {amount") != []
    assert templates.problems(kind, "Paid {amount:>10}") != []
    assert templates.problems(kind, "Paid {amount.real}") != []
    assert templates.problems(kind, "   ") == ["Write the message."]
    # The payment code message must carry the code.
    assert "{code}" in templates.problems(kinds.PAYMENT_CODE, "Pay {amount} at {shop}")[0]
    assert templates.problems(kind, "{{literal}} braces {amount}") == []


@given(st.text(alphabet=string.printable + "कखग{}", max_size=80))
def test_a_text_either_saves_and_fills_or_gets_a_problem(body):
    kind = kinds.RECEIPT
    found = templates.problems(kind, body)
    if not found:
        filled = templates.fill(body, {name: "X" for name in kind.placeholders})
        assert isinstance(filled, str)


def test_every_default_template_is_valid_and_seeded_the_same():
    from importlib import import_module

    migration = import_module("migrations.versions.0025_languages_and_message_templates")
    for kind in kinds.KINDS.values():
        assert set(kind.defaults) == {"en", "ne"}
        for language, body in kind.defaults.items():
            assert templates.problems(kind, body) == [], (kind.name, language)
            assert migration.SEEDED[(kind.name, language)] == body


# --- the editor ---------------------------------------------------------------------------


def test_the_editor_refuses_an_unknown_placeholder_and_keeps_the_text(client, make_user, login):
    login(client, make_user())
    typed = "तपाईंले {amount} तिर्नुभयो {secret}"
    response = client.post("/messages/receipt/ne", data={"body": typed, "action": "save"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "{secret}" in page and "तपाईंले {amount} तिर्नुभयो" in page
    assert db.session.scalar(select(func.count()).select_from(MessageTemplate)) == 0


def test_the_editor_previews_and_saves(client, make_user, login, app):
    app.config["SMS_PRICE_PER_SEGMENT"] = "0.05"
    login(client, make_user())
    body = "तपाईंले {shop} मा {amount} तिर्नुभयो। {left} बाँकी छ।"
    preview = client.post("/messages/receipt/ne", data={"body": body, "action": "preview"})
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "Sharma Kirana Pasal" in page and "१,५००.५०" in page and "UCS-2" in page
    assert db.session.scalar(select(func.count()).select_from(MessageTemplate)) == 0
    live = client.post("/messages/receipt/ne/preview", data={"body": body * 3}).get_json()
    assert live["ok"] and live["encoding"] == "UCS-2"
    # What the page shows is what the SMS will be: measured on the text with the sample values.
    assert live["segments"] == segments.measure(live["text"]).segments > 1
    assert live["cost"] == f"USD\u00a0{live['segments'] * 5 / 100:.4f}"
    bad = client.post("/messages/receipt/ne/preview", data={"body": "{nope}"})
    assert bad.status_code == 422 and "{nope}" in bad.get_json()["errors"][0]
    saved = client.post("/messages/receipt/ne", data={"body": body, "action": "save"})
    assert saved.status_code == 302
    assert templates.text_for("receipt", "ne") == (body, "ne")
    assert templates.text_for("receipt", "sw")[1] == "en"  # no Swahili text: the English one


def test_the_editor_needs_the_permission(client, make_user, login):
    login(client, make_user(role="finance"))
    assert client.get("/messages/").status_code == 403
    assert client.post("/messages/receipt/en", data={"body": "x"}).status_code == 403
    assert client.get("/messages/nothing/en").status_code in (403, 404)


# --- messages sent ------------------------------------------------------------------------


@pytest.fixture
def world(app, make_project, make_beneficiary, make_vendor):
    project = make_project(name="Winter cash", status="active")
    nepali = make_beneficiary(project=project, language="ne")
    english = make_beneficiary(project=project, language="en")
    vendor = make_vendor(project=project, status="approved", name="Corner Shop")
    chain.pretend_deployed(project)
    db.session.commit()
    return project, nepali, english, vendor


def _batch(project, people, amount):
    disbursement = Disbursement(
        project_id=project.id, title="Winter", amount_each=amount, batch_size=10
    )
    db.session.add(disbursement)
    db.session.flush()
    batch = DisbursementBatch(
        disbursement_id=disbursement.id, number=1, batch_key="0x" + "ab" * 32, size=len(people)
    )
    db.session.add(batch)
    db.session.flush()
    for person in people:
        db.session.add(
            DisbursementItem(
                disbursement_id=disbursement.id,
                batch_id=batch.id,
                beneficiary_id=person.id,
                address="0x" + "33" * 20,
                amount=amount,
            )
        )
        chain.entitle(project, person, amount)
    db.session.flush()
    return batch


def sms(purpose: str) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.purpose == purpose)
    return list(db.session.scalars(query.order_by(OutboxMessage.id)))


def test_allocation_notices_once_per_person_in_their_language(world):
    project, nepali, english, _ = world
    batch = _batch(project, [nepali, english], 250_000)
    assert notices.allocation_notices(batch.id) == 2
    assert notices.allocation_notices(batch.id) == 0  # the job ran again: nothing more
    db.session.commit()
    sent = {m.recipient: m.body for m in sms("beneficiary.allocation")}
    assert len(sent) == 2
    assert "२,५००.००" in sent[nepali.pii.phone] and "पाउनुभयो" in sent[nepali.pii.phone]
    assert "You have received NPR 2,500.00 from Winter cash" in sent[english.pii.phone]


def test_the_receipt_is_sent_once_with_what_is_left(world):
    project, nepali, _, vendor = world
    chain.entitle(project, nepali, 100_000)
    redemption = Redemption(
        project_id=project.id,
        vendor_id=vendor.id,
        beneficiary_id=nepali.id,
        amount=12_550,
        method="phone",
        status="settled",
        remaining_after=87_450,
        code_expires_at=utcnow(),
    )
    db.session.add(redemption)
    db.session.flush()
    notices.receipt(redemption)
    notices.receipt(redemption)  # a reorg settles it again: still one receipt
    db.session.commit()
    [receipt] = sms("beneficiary.receipt")
    assert (
        receipt.body == "तपाईंले Corner Shop मा NPR १२५.५० तिर्नुभयो। "
        "Winter cash मा तपाईंसँग NPR ८७४.५० बाँकी छ।"
    )


def test_the_balance_reply_in_their_language(world):
    project, nepali, english, _ = world
    chain.entitle(project, nepali, 50_000)
    chain.entitle(project, english, 50_000)
    db.session.flush()
    assert notices.balance_text(nepali, project.id) == (
        "Winter cash मा खर्च गर्न तपाईंसँग NPR ५००.०० बाँकी छ।"
    )
    assert notices.balance_text(english, project.id) == (
        "You have NPR 500.00 left to spend in Winter cash."
    )


def test_a_saved_template_is_what_goes_out(world, make_user):
    project, nepali, _, _ = world
    templates.save(kinds.BALANCE, "ne", "बाँकी: {left}", make_user().id)
    chain.entitle(project, nepali, 1_000)
    db.session.flush()
    assert notices.balance_text(nepali, project.id) == "बाँकी: NPR १०.००"
    with pytest.raises(templates.TemplateProblem):
        templates.save(kinds.BALANCE, "ne", "{code}", None)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(runs=st.integers(min_value=1, max_value=4))
def test_allocation_notices_are_idempotent_however_often_the_job_runs(world, runs):
    project, nepali, english, _ = world
    batch = db.session.scalar(select(DisbursementBatch)) or _batch(
        project, [nepali, english], 1_000
    )
    for _ in range(runs):
        notices.allocation_notices(batch.id)
    db.session.flush()
    assert len(sms("beneficiary.allocation")) == 2


def test_english_messages_stay_in_gsm_7(app):
    # One character outside GSM-7 (a no-break space, a curly quote) would make every English
    # message UCS-2 and cost two to three times as much.
    for kind in kinds.KINDS.values():
        values = {name: kinds.SAMPLE[name] for name in kind.placeholders}
        text = notices.render(kind.name, "en", values, decimals=2, currency="NPR")
        assert segments.measure(text).encoding == "GSM-7", (kind.name, text)

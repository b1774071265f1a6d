"""Redemption services without a chain: finding the beneficiary, the checks before a code is
sent, the reservation, cancelling, the suspension listener and the chain-outcome listener."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal import events, realtime
from portal.audit.models import AuditEntry
from portal.beneficiaries import services as beneficiaries
from portal.cards import services as cards
from portal.chain.models import ChainSigner, ChainTx, ProjectChain
from portal.comms.models import OutboxMessage
from portal.disbursements.models import Entitlement
from portal.errors import Forbidden, ValidationFailed
from portal.extensions import db
from portal.jobs.models import Job
from portal.redemptions import codes, ledger
from portal.redemptions import services as redemptions
from portal.redemptions.models import Redemption
from portal.vendors import services as vendors
from tests.support import chain

CODE = re.compile(r"\b(\d{6})\b")


add_chain = chain.pretend_deployed
entitle = chain.entitle


@pytest.fixture
def world(app, make_project, make_beneficiary, make_vendor):
    # The project's contract is pretended, not on the chain: the transfer is left to the job,
    # the path a redemption takes when the chain cannot be reached from the request.
    app.config["REDEMPTION_SIGN_IN_REQUEST"] = False
    project = make_project(status="active")
    person = make_beneficiary(project=project, phone="9841000001")
    vendor = make_vendor(project=project, status="approved")
    pc = add_chain(project)
    entitle(project, person)
    db.session.commit()
    return project, pc, person, vendor


def sent_code() -> str:
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
    return CODE.search(message.body).group(1)


def accepted(world, amount=1_000) -> Redemption:
    project, pc, person, vendor = world
    redemption = redemptions.start(vendor, project, pc, person, amount, "phone")
    db.session.commit()
    assert redemptions.confirm(vendor, redemption.id, sent_code()).ok
    db.session.commit()
    return db.session.get(Redemption, redemption.id)


def test_projects_a_vendor_can_charge(world, make_project):
    project, _, _, vendor = world
    assert [p.id for p, _ in redemptions.chargeable_projects(vendor)] == [project.id]
    undeployed = make_project(status="active")
    add_chain(undeployed, status="deploying")
    draft = make_project(status="draft")
    add_chain(draft)
    for other in (undeployed, draft):
        vendors.assign(vendor, other)
    db.session.commit()
    assert [p.id for p, _ in redemptions.chargeable_projects(vendor)] == [project.id]
    with pytest.raises(ValidationFailed) as refused:
        redemptions.chargeable_project(vendor, draft.id)
    assert "project_id" in refused.value.fields


def test_find_by_phone_written_any_way(world):
    project, _, person, _ = world
    subjects = set()
    for typed in ("9841000001", "+977 984-1000001", "984 100 0001"):
        payer = redemptions.find_payer(project, phone=typed)
        assert (payer.person.id, payer.method) == (person.id, "phone")
        subjects.add(payer.subject)
    assert len(subjects) == 1 and "9841000001" not in subjects.pop()
    # A number that is nobody's here is no error: the charge goes on as a decoy.
    nobody = redemptions.find_payer(project, phone="9841999999")
    assert (nobody.person, nobody.method) == (None, "phone")
    with pytest.raises(ValidationFailed) as refused:
        redemptions.find_payer(project, phone="12")
    assert "Not a valid" in refused.value.fields["phone"]


def test_find_by_card_only_while_it_works_and_only_in_its_project(world, make_project):
    project, _, person, _ = world
    _, token = cards.issue(person)
    payer = redemptions.find_payer(project, card=token.lower())
    assert (payer.person.id, payer.method) == (person.id, "card")
    # The card and the typed number count against the same per-person limits.
    assert payer.subject == redemptions.find_payer(project, phone="9841000001").subject
    other = make_project(status="active")
    with pytest.raises(ValidationFailed):
        redemptions.find_payer(other, card=token)
    cards.revoke_active(person)
    with pytest.raises(ValidationFailed) as refused:
        redemptions.find_payer(project, card=token)
    assert "card" in refused.value.fields
    with pytest.raises(ValidationFailed) as refused:
        redemptions.find_payer(project)
    assert "card" in refused.value.fields


def test_an_inactive_beneficiary_cannot_be_charged(world):
    project, _, person, _ = world
    beneficiaries.update(person, {"name": "Someone", "phone": "9841000001", "status": "inactive"})
    assert redemptions.find_payer(project, phone="9841000001").person is None


def test_too_much_gets_no_code_and_the_beneficiary_is_told(world):
    project, pc, person, vendor = world
    short = redemptions.start(vendor, project, pc, person, 10_001, "phone")
    db.session.commit()
    # The vendor's side goes on as usual; no code exists that could confirm it.
    assert (short.status, short.code_hash) == ("awaiting_code", None)
    notice = db.session.scalar(select(OutboxMessage))
    assert (notice.recipient, notice.purpose) == (person.pii.phone, "redemption.short")
    # In the project's currency (the token is a detail of how the value is held).
    assert "NPR 100.00 left" in notice.body and not CODE.search(notice.body)
    redemption = redemptions.start(vendor, project, pc, person, 10_000, "phone")
    db.session.commit()
    assert db.session.get(Redemption, short.id).status == "cancelled"  # replaced
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
    assert message.recipient == person.pii.phone
    assert message.purpose == "redemption.code"
    assert "NPR 100.00" in message.body and vendor.name in message.body
    job = db.session.get(Job, message.job_id)
    assert (job.kind, job.queue, job.payload) == ("comms.sms", "comms", {"message_id": message.id})
    assert redemption.status == "awaiting_code" and redemption.code_hash


def test_nothing_left_and_suspended_vendor(world):
    project, pc, person, vendor = world
    db.session.scalar(select(Entitlement)).redeemed = 10_000
    nothing = redemptions.start(vendor, project, pc, person, 1, "phone")
    assert nothing.code_hash is None
    for _ in range(codes.max_tries()):
        outcome = redemptions.confirm(vendor, nothing.id, "123456").outcome
    assert outcome == codes.LOCKED
    vendors.change_status(vendor, "suspended")
    with pytest.raises(Forbidden):
        redemptions.start(vendor, project, pc, person, 1, "phone")


def test_accepting_reserves_and_queues_one_transfer(world):
    redemption = accepted(world, amount=2_500)
    held = db.session.scalar(select(Entitlement))
    assert (held.redeemed, held.remaining) == (2_500, 7_500)
    job = db.session.get(Job, redemption.job_id)
    assert (job.kind, job.queue, job.payload) == (
        "redemptions.transfer",
        "contracts",
        {"redemption_id": redemption.id},
    )
    assert redemption.confirmed_at is not None
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions[-2:] == ["redemption.started", "redemption.accepted"]
    labels = db.session.scalars(
        select(AuditEntry.actor_label).where(AuditEntry.action.like("redemption.%"))
    ).all()
    assert set(labels) == {f"vendor:{world[3].id}"}


def test_a_right_code_with_too_little_left_fails_without_reserving(world):
    project, pc, person, vendor = world
    redemption = redemptions.start(vendor, project, pc, person, 6_000, "phone")
    db.session.commit()
    # Meanwhile another vendor's redemption reserved most of it.
    db.session.scalar(select(Entitlement)).redeemed = 6_000
    db.session.commit()
    result = redemptions.confirm(vendor, redemption.id, sent_code())
    db.session.commit()
    assert result.outcome == redemptions.SHORT
    row = db.session.get(Redemption, redemption.id)
    assert row.status == "failed" and "Not enough" in row.error
    assert (row.job_id, db.session.scalar(select(Entitlement)).redeemed) == (None, 6_000)


def test_cancel_only_while_waiting(world):
    project, pc, person, vendor = world
    redemption = redemptions.start(vendor, project, pc, person, 100, "phone")
    db.session.commit()
    assert redemptions.cancel(vendor, redemption.id)
    db.session.commit()
    assert not redemptions.cancel(vendor, redemption.id)
    assert redemptions.confirm(vendor, redemption.id, sent_code()).outcome == codes.USED


def test_another_vendor_cannot_touch_it(world, make_vendor):
    project, pc, person, vendor = world
    redemption = redemptions.start(vendor, project, pc, person, 100, "phone")
    stranger = make_vendor(project=project, status="approved")
    db.session.commit()
    for act in (redemptions.confirm, redemptions.resend, redemptions.cancel):
        with pytest.raises(Exception, match="No such payment"):
            act(stranger, redemption.id, *(["123456"] if act is redemptions.confirm else []))


def test_suspension_is_heard_by_the_listener(world, monkeypatch):
    project, pc, person, vendor = world
    waiting = redemptions.start(vendor, project, pc, person, 100, "phone")
    db.session.commit()
    emitted = []
    monkeypatch.setattr(realtime, "emit", lambda name, data, rooms: emitted.append((name, data)))
    vendors.change_status(vendor, "suspended", reason="fraud check")
    db.session.commit()
    row = db.session.get(Redemption, waiting.id)
    assert row.status == "cancelled" and "suspended" in row.error
    assert ("redemption.updated", "cancelled") in {(n, d.get("status")) for n, d in emitted}


def _tx(redemption, status, error=None) -> ChainTx:
    signer = db.session.scalar(select(ChainSigner)) or ChainSigner(
        name="operator", address="0x" + "33" * 20, private_key="0x" + "44" * 32
    )
    tx = ChainTx(
        signer=signer,
        project_id=redemption.project_id,
        chain_id=1337,
        nonce=redemption.id,
        purpose="redeem",
        ref_type="redemption",
        ref_id=redemption.id,
        gas_limit=100_000,
        status=status,
        error=error,
    )
    db.session.add(tx)
    db.session.flush()
    return tx


def test_a_confirmed_transaction_settles_the_redemption(world):
    redemption = accepted(world)
    tx = _tx(redemption, "confirmed")
    events.chain_tx_final.send(tx, receipt={"status": 1})
    db.session.commit()
    row = db.session.get(Redemption, redemption.id)
    assert (row.status, row.chain_tx_id) == ("settled", tx.id)
    assert row.settled_at is not None
    assert db.session.scalar(select(Entitlement)).redeemed == 1_000
    balance = ledger.balances(world[3])[0]
    assert (balance.settled_text, balance.count) == ("NPR\u00a010.00", 1)


def test_a_reverted_transaction_gives_the_amount_back_once(world):
    redemption = accepted(world)
    tx = _tx(redemption, "reverted", error="Reverted on chain: InsufficientEntitlement")
    events.chain_tx_final.send(tx, receipt={"status": 0})
    events.chain_tx_final.send(tx, receipt={"status": 0})  # a duplicate follow-up
    db.session.commit()
    row = db.session.get(Redemption, redemption.id)
    assert row.status == "failed" and "InsufficientEntitlement" in row.error
    assert db.session.scalar(select(Entitlement)).redeemed == 0


def test_a_transaction_of_something_else_is_ignored(world):
    redemption = accepted(world)
    tx = _tx(redemption, "confirmed")
    tx.ref_type = "disbursement_batch"
    events.chain_tx_final.send(tx, receipt={"status": 1})
    assert db.session.get(Redemption, redemption.id).status == "accepted"


def test_the_transfer_job_fails_cleanly_without_a_contract(world, worker):
    redemption = accepted(world)
    db.session.get(ProjectChain, redemption.project_id).status = "not_deployed"
    db.session.commit()
    worker.run("contracts")
    row = db.session.get(Redemption, redemption.id)
    assert row.status == "failed" and "no deployed" in row.error
    assert db.session.scalar(select(Entitlement)).redeemed == 0

"""A redemption end to end on the in-process EVM: code, reservation, transfer job, chain
confirmation, the vendor's tokens; failures give the reservation back; suspension stops it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.chain import addresses, contracts, settlement, setup
from portal.chain.models import ChainTx
from portal.comms.models import OutboxMessage
from portal.disbursements.models import Entitlement
from portal.extensions import db
from portal.jobs.models import Job
from portal.redemptions import codes, ledger, transfer
from portal.redemptions import services as redemptions
from portal.redemptions.models import CANCELLED, FAILED, SETTLED, Redemption
from portal.vendors import services as vendors
from tests.support import chain

CODE = re.compile(r"\b(\d{6})\b")


def redeem_txs() -> int:
    return db.session.scalar(
        select(func.count()).select_from(ChainTx).where(ChainTx.purpose == "redeem")
    )


def last_code() -> str:
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
    return CODE.search(message.body).group(1)


@pytest.fixture
def funded(app, worker, make_project, make_beneficiary, make_vendor):
    project = make_project(status="active")
    people = [make_beneficiary(project=project) for _ in range(2)]
    vendor = make_vendor(project=project, status="approved")
    db.session.commit()
    chain.deploy(worker, project)
    chain.fund(worker, project, "100.00")
    chain.allocate(worker, project, amount="20.00", beneficiary_ids=[p.id for p in people])
    return project, setup.state(project.id), people, vendor


def charge(project, pc, person, vendor, amount=1250):
    redemption = redemptions.start(vendor, project, pc, person, amount, "phone")
    db.session.commit()
    return redemption


def test_code_to_tokens_at_the_vendor(funded, worker):
    project, pc, (person, _), vendor = funded
    redemption = charge(project, pc, person, vendor)
    result = redemptions.confirm(vendor, redemption.id, last_code())
    db.session.commit()
    assert result.ok
    held = redemptions.entitlement(project.id, person.id)
    assert (held.allocated, held.redeemed) == (2000, 1250)

    worker.run("contracts")
    done = db.session.get(Redemption, redemption.id)
    assert done.status == SETTLED
    assert done.settled_at is not None and done.chain_tx_id is not None
    tx = db.session.get(ChainTx, done.chain_tx_id)
    assert (tx.status, tx.purpose, tx.ref_id) == ("confirmed", "redeem", done.id)

    # Version 2: the value stays in the contract as the vendor's balance, to be settled.
    assert settlement.vendor_balance(project.id, vendor.id) == 1250
    assert (
        contracts.of_project(pc)
        .functions.vendorBalanceOf(addresses.vendor_address(vendor.id))
        .call()
        == 1250
    )
    entitlements = contracts.at(pc.contract_kind, pc.contract_address)
    assert entitlements.functions.entitlementOf(addresses.pseudonym(person.id)).call() == 750
    key = addresses.redemption_key(done.id)
    assert entitlements.functions.redemptionDone(key).call()
    # The transfer job's cheaper read gives the same answers.
    name = contracts.contract_name(pc)
    assert contracts.read(name, pc.contract_address, "redemptionDone", key) is True
    other = addresses.redemption_key(done.id + 1000)
    assert contracts.read(name, pc.contract_address, "redemptionDone", other) is False
    # One contract object per client, not one per read.
    assert contracts.at(name, pc.contract_address) is contracts.of_project(pc)

    # The job run again (a duplicate delivery after a crash) sends nothing more.
    assert transfer.transfer(done.id).startswith("nothing to do")
    balance = ledger.balances(vendor, with_chain=True)[0]
    assert (balance.settled, balance.pending, balance.count) == (1250, 0, 1)
    assert (balance.on_chain, balance.on_chain_text) == (1250, "NPR\u00a012.50")


@pytest.mark.parametrize("in_request", [True, False], ids=["signed-in-request", "by-the-job"])
def test_a_rerun_finds_the_transaction_already_signed(app, funded, worker, in_request):
    app.config["REDEMPTION_SIGN_IN_REQUEST"] = in_request
    project, pc, (person, _), vendor = funded
    redemption = charge(project, pc, person, vendor, amount=500)
    assert redemptions.confirm(vendor, redemption.id, last_code()).ok
    db.session.commit()
    if in_request:  # the code's unit of work signed it: no transfer job was queued
        assert db.session.get(Redemption, redemption.id).job_id is None
        assert redeem_txs() == 1
    else:
        first = transfer.transfer(redemption.id)
        db.session.commit()
        assert first.startswith("sent as transaction")
    # As if the worker died after sending and the job ran again before the receipt came.
    db.session.execute(
        Redemption.__table__.update().where(Redemption.id == redemption.id).values(chain_tx_id=None)
    )
    db.session.commit()
    assert transfer.transfer(redemption.id).startswith("already sent")
    db.session.commit()
    worker.run("contracts")
    assert redeem_txs() == 1
    assert db.session.get(Redemption, redemption.id).status == SETTLED


def test_refused_by_the_contract_gives_the_reservation_back(funded, worker):
    project, pc, (person, _), vendor = funded
    redemption = charge(project, pc, person, vendor, amount=1500)
    assert redemptions.confirm(vendor, redemption.id, last_code()).ok
    db.session.commit()
    # The database thinks more is left than the chain does (say, revoked on chain meanwhile).
    held = redemptions.entitlement(project.id, person.id)
    held.allocated += 5000
    db.session.commit()
    other = charge(project, pc, person, vendor, amount=1500)
    assert redemptions.confirm(vendor, other.id, last_code()).ok
    db.session.commit()

    worker.run("contracts")
    first, second = (db.session.get(Redemption, r.id) for r in (redemption, other))
    assert {first.status, second.status} == {SETTLED, FAILED}
    failed = first if first.status == FAILED else second
    # Refused at the estimate (the first redeem of a contract in a process) or, with the gas
    # limit then known, reverted on chain: either way nothing moved and the reason is kept.
    assert "Refused by the contract" in failed.error or "Reverted on chain" in failed.error
    held = redemptions.entitlement(project.id, person.id)
    assert held.redeemed == 1500  # the failed one was given back


def test_suspension_stops_pending_and_accepted_redemptions(app, funded, worker):
    # A transfer left to the job (the chain was unreachable from the request) is still stoppable.
    app.config["REDEMPTION_SIGN_IN_REQUEST"] = False
    project, pc, (first, second), vendor = funded
    waiting = charge(project, pc, first, vendor, amount=100)
    accepted = charge(project, pc, second, vendor, amount=300)
    assert redemptions.confirm(vendor, accepted.id, last_code()).ok
    db.session.commit()
    assert redemptions.entitlement(project.id, second.id).redeemed == 300

    vendors.change_status(vendor, "suspended", reason="checks")
    db.session.commit()
    assert db.session.get(Redemption, waiting.id).status == CANCELLED
    stopped = db.session.get(Redemption, accepted.id)
    assert stopped.status == CANCELLED
    assert "suspended" in stopped.error
    assert redemptions.entitlement(project.id, second.id).redeemed == 0

    worker.run("contracts")  # the queued transfer job finds nothing to do
    assert redeem_txs() == 0
    job = db.session.get(Job, stopped.job_id)
    assert job.status == "succeeded" and "nothing to do" in job.result["step"]


def test_wrong_then_right_code_and_the_code_cannot_be_reused(funded, worker):
    project, pc, (person, _), vendor = funded
    redemption = charge(project, pc, person, vendor, amount=100)
    code = last_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    result = redemptions.confirm(vendor, redemption.id, wrong)
    assert (result.outcome, result.tries_left) == (codes.WRONG, 4)
    assert redemptions.confirm(vendor, redemption.id, code).ok
    assert redemptions.confirm(vendor, redemption.id, code).outcome == codes.USED
    db.session.commit()
    held = db.session.scalar(select(Entitlement).where(Entitlement.beneficiary_id == person.id))
    assert held.redeemed == 100

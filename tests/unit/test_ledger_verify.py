"""``ledger-verify`` reads every entitlement, vendor balance and settlement from the chain's
event log and finds any difference with the database; multisig funding waits for the mint."""

from __future__ import annotations

import json
import re

from eth_account import Account
from sqlalchemy import select, update

from portal.chain import addresses, ledger_verify, settlement, setup, signers, treasury
from portal.chain import client as chain_client
from portal.chain.models import ChainSettlement, Funding
from portal.comms.models import OutboxMessage
from portal.disbursements.models import Entitlement
from portal.extensions import db
from portal.redemptions import services as redemptions
from tests.support import chain

CODE = re.compile(r"\b(\d{6})\b")


def last_code() -> str:
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
    return CODE.search(message.body).group(1)


def busy_project(worker, make_project, make_beneficiary, make_vendor):
    """Funded, five entitlements, two redemptions at one vendor, one settlement."""
    project = make_project(status="active")
    people = [make_beneficiary(project=project) for _ in range(5)]
    vendor = make_vendor(project=project, status="approved")
    db.session.commit()
    chain.deploy(worker, project)
    chain.fund(worker, project, "100.00")
    chain.allocate(worker, project, amount="10.00", beneficiary_ids=[p.id for p in people])
    pc = setup.state(project.id)
    for person, amount in ((people[0], 300), (people[1], 450)):
        r = redemptions.start(vendor, project, pc, person, amount, "phone")
        db.session.commit()
        assert redemptions.confirm(vendor, r.id, last_code()).ok
        db.session.commit()
        worker.run("contracts")
    settlement.prepare_settle(project.id, "S-1", vendor.id, 500)
    db.session.commit()
    worker.run("contracts")
    return project, people, vendor


def run_cli(app, *args):
    result = app.test_cli_runner().invoke(args=["ledger-verify", *args])
    last = json.loads(result.output.strip().splitlines()[-1])
    return result, last


def test_a_consistent_ledger_passes(app, worker, make_project, make_beneficiary, make_vendor):
    project, _, _ = busy_project(worker, make_project, make_beneficiary, make_vendor)
    result, last = run_cli(app, "--project", str(project.id))
    # 5 entitlements + 1 vendor + 1 settlement + the two contract totals.
    assert last == {"checked": 9, "mismatches": 0}, result.output
    assert result.exit_code == 0


def test_every_kind_of_difference_is_found(
    app, worker, make_project, make_beneficiary, make_vendor
):
    project, people, vendor = busy_project(worker, make_project, make_beneficiary, make_vendor)
    db.session.execute(
        update(Entitlement)
        .where(Entitlement.beneficiary_id == people[3].id)
        .values(allocated=Entitlement.allocated + 1)
    )
    db.session.commit()
    result, last = run_cli(app)
    assert result.exit_code == 1
    assert last["mismatches"] == 1
    assert f"entitlement of beneficiary {people[3].id}: chain 1000, database 1001" in result.output

    # A settlement the database thinks failed, while the chain burned it.
    db.session.execute(update(ChainSettlement).values(status="failed"))
    db.session.commit()
    found = ledger_verify.verify([project.id]).projects[0]
    texts = "\n".join(found.mismatches)
    assert f"balance of vendor {vendor.id}: chain 250, database 750" in texts
    assert "settlement S-1: failed here, settled on chain (500)" in texts
    assert found.mismatch_count == 3


def test_an_entitlement_unknown_to_the_database_is_found(
    app, worker, make_project, make_beneficiary, make_vendor
):
    project, people, _ = busy_project(worker, make_project, make_beneficiary, make_vendor)
    db.session.execute(
        Entitlement.__table__.delete().where(Entitlement.beneficiary_id == people[4].id)
    )
    db.session.commit()
    found = ledger_verify.verify([project.id]).projects[0]
    address = addresses.pseudonym(people[4].id)
    assert found.mismatches == [f"entitlement at {address}: chain 1000, not in the database"]


def test_the_staff_page_runs_the_check_as_a_job(
    app, worker, client, login, make_user, make_project, make_beneficiary, make_vendor
):
    project, _, _ = busy_project(worker, make_project, make_beneficiary, make_vendor)
    user = make_user("admin")
    db.session.commit()
    login(client, user)
    page = client.get(f"/projects/{project.id}/chain/ledger")
    assert page.status_code == 200
    assert b"Check the ledger" in page.data
    started = client.post(f"/projects/{project.id}/chain/ledger", follow_redirects=True)
    assert started.status_code == 200
    worker.run("reports")
    page = client.get(f"/projects/{project.id}/chain/ledger")
    assert b"9 checked" in page.data and b"no mismatch" in page.data


# ---- a multisig treasury ----


def test_multisig_funding_waits_for_the_signers_mint(
    app, worker, make_project, client, login, make_user
):
    outside = Account.create()  # held by the signers, never given to the portal
    app.config["CHAIN_TREASURY_ADDRESS"] = outside.address
    app.config["CHAIN_TREASURY_KEY"] = None
    project = make_project(status="active")
    db.session.commit()
    pc = chain.deploy(worker, project)
    assert pc.admin_address == outside.address and signers.multisig()
    funding = setup.start_funding(project, 5_000, "from the multisig", None)
    assert setup.fund_step(funding.id) == "waiting for the treasury's signers"
    db.session.commit()
    assert funding.status == "pending" and funding.tx_id is None
    assert treasury.awaiting(project.id) == [funding]

    prepared = treasury.prepared_mint(funding)
    assert prepared["to"] == pc.token_address and prepared["from"] == outside.address
    # Staff see the unsigned transaction to hand to the signers.
    login(client, make_user("admin"))
    page = client.get(f"/projects/{project.id}/chain").get_data(as_text=True)
    assert "Waiting for the treasury" in page
    assert prepared["data"] in page and prepared["to"] in page
    # The signers send it from their own wallet (here: the key the portal never saw).
    w3 = chain_client.web3()
    faucet = Account.from_key(chain_client.faucet_key())
    fee = {"maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "type": 2}
    gas_money = {
        "to": outside.address,
        "value": 10**17,
        "gas": 21_000,
        "chainId": pc.chain_id,
        "nonce": w3.eth.get_transaction_count(faucet.address),
        **fee,
    }
    w3.eth.send_raw_transaction(faucet.sign_transaction(gas_money).raw_transaction)
    mint = {
        "to": prepared["to"],
        "data": prepared["data"],
        "value": 0,
        "gas": prepared["gas"],
        "chainId": prepared["chainId"],
        "nonce": 0,
        **fee,
    }
    w3.eth.send_raw_transaction(outside.sign_transaction(mint).raw_transaction)

    assert treasury.look_for_mint(funding.id).startswith("mint found")
    db.session.commit()
    funding = db.session.get(Funding, funding.id)
    assert funding.status == "confirmed" and funding.mint_tx_hash
    assert setup.state(project.id).funded == 5_000
    assert treasury.look_for_mint(funding.id) == "nothing to do"

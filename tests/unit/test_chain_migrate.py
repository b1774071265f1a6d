"""``chain-migrate``: a version-1 project moves to the version-2 contracts with nothing lost or
doubled, resumes after an interruption, and its ledger checks clean afterwards."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from portal.chain import addresses, contracts, ledger_verify, migrate, settlement, setup, signers
from portal.chain.models import ChainMigration
from portal.comms.models import OutboxMessage
from portal.extensions import db
from portal.redemptions import services as redemptions
from tests.support import chain

CODE = re.compile(r"\b(\d{6})\b")
OPERATOR = bytes(contracts.Web3.keccak(text="OPERATOR_ROLE"))
MINTER = bytes(contracts.Web3.keccak(text="MINTER_ROLE"))


def last_code() -> str:
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
    return CODE.search(message.body).group(1)


@pytest.fixture
def old_project(app, worker, make_project, make_beneficiary, make_vendor):
    """A version-1 project: funded 100.00, 3 × 20.00 allocated, 12.50 redeemed at a vendor."""
    app.config["CHAIN_CONTRACT_VERSION"] = 1
    project = make_project(status="active")
    people = [make_beneficiary(project=project) for _ in range(3)]
    vendor = make_vendor(project=project, status="approved")
    db.session.commit()
    pc = chain.deploy(worker, project)
    assert pc.version == 1
    chain.fund(worker, project, "100.00")
    chain.allocate(worker, project, amount="20.00", beneficiary_ids=[p.id for p in people])
    r = redemptions.start(vendor, project, pc, people[0], 1250, "phone")
    db.session.commit()
    assert redemptions.confirm(vendor, r.id, last_code()).ok
    db.session.commit()
    worker.run("contracts")
    old = contracts.at(contracts.PROJECT_TOKEN, pc.token_address)
    assert old.functions.balanceOf(addresses.vendor_address(vendor.id)).call() == 1250
    app.config["CHAIN_CONTRACT_VERSION"] = 2
    return project, people, vendor


def test_migration_carries_every_balance_over_once(app, worker, old_project):
    project, people, vendor = old_project
    old_pc = setup.state(project.id)
    old_token, old_contract = old_pc.token_address, old_pc.contract_address
    assert ledger_verify.verify([project.id]).mismatches == 0

    result = app.test_cli_runner().invoke(args=["chain-migrate", "--project", str(project.id)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["status"] == "done"
    assert (report["entitlements"], report["vendors"], report["unallocated"]) == (
        4750,
        1250,
        4000,
    )
    worker.run("contracts")  # the vendor allow-list of the new contract

    pc = setup.state(project.id)
    assert (pc.version, pc.status) == (2, "deployed")
    assert pc.contract_address != old_contract and pc.token_address != old_token
    new = contracts.of_project(pc)
    assert new.functions.entitlementOf(addresses.pseudonym(people[0].id)).call() == 750
    assert new.functions.entitlementOf(addresses.pseudonym(people[1].id)).call() == 2000
    assert settlement.vendor_balance(project.id, vendor.id) == 1250
    token = contracts.at(contracts.PROJECT_TOKEN_V2, pc.token_address)
    assert token.functions.totalSupply().call() == pc.funded == 10_000
    assert new.functions.available().call() == 4000
    assert token.functions.hasRole(MINTER, signers.treasury().address).call()

    # The old pair is frozen for good: the operator holds no role there any more.
    operator = signers.operator().address
    assert (
        not contracts.at(contracts.ENTITLEMENTS, old_contract)
        .functions.hasRole(OPERATOR, operator)
        .call()
    )
    assert (
        not contracts.at(contracts.PROJECT_TOKEN, old_token)
        .functions.hasRole(MINTER, operator)
        .call()
    )

    verified = ledger_verify.verify([project.id])
    assert verified.mismatches == 0, verified.projects[0].mismatches
    from portal.chain import reconcile

    assert reconcile.check([project.id]).ok, reconcile.check([project.id]).differences

    # Run again: nothing to do, nothing sent.
    again = app.test_cli_runner().invoke(args=["chain-migrate", "--project", str(project.id)])
    assert json.loads(again.output.strip().splitlines()[-1])["status"] == "done"

    # The migrated vendor can be settled on the new contract.
    settlement.prepare_settle(project.id, "after-migration", vendor.id, 1250)
    db.session.commit()
    worker.run("contracts")
    assert settlement.vendor_balance(project.id, vendor.id) == 0
    assert ledger_verify.verify([project.id]).mismatches == 0


def test_an_interrupted_migration_resumes_without_doubling(app, worker, old_project):
    project, _people, _ = old_project
    # Two steps, then the process "dies": the token is deployed, the contract is on its way.
    assert migrate.advance(project.id) == "token sent"
    db.session.commit()
    worker.run("contracts")
    assert migrate.advance(project.id) == "contract sent"
    db.session.commit()
    assert setup.state(project.id).status == migrate.MIGRATING
    # Meanwhile redemptions and allocations are refused (the project is not "deployed").
    assert db.session.get(ChainMigration, project.id).status == "started"

    report = migrate.run(project.id)
    assert report["status"] == "done"
    pc = setup.state(project.id)
    token = contracts.at(contracts.PROJECT_TOKEN_V2, pc.token_address)
    assert token.functions.totalSupply().call() == 10_000
    assert migrate.advance(project.id) == "done"
    assert ledger_verify.verify([project.id]).mismatches == 0


def test_a_version_2_project_is_not_migrated(app, worker, make_project):
    project = make_project(status="active")
    db.session.commit()
    chain.deploy(worker, project)
    result = app.test_cli_runner().invoke(args=["chain-migrate", "--project", str(project.id)])
    assert result.exit_code == 1
    assert "already runs the version-2 contracts" in result.output


def _wallet_send(key: str, call: dict) -> None:
    """A signer of the multisig sends a prepared call from their own wallet (here: the
    treasury's key, outside the portal), topped up with gas by the development faucet."""
    from eth_account import Account

    from portal.chain import client

    w3 = client.web3()
    sender = Account.from_key(key)

    def send(account, tx: dict) -> None:
        block = w3.eth.get_block("latest")
        tx = {
            **tx,
            "maxPriorityFeePerGas": 10**9,
            "maxFeePerGas": 2 * block["baseFeePerGas"] + 10**9,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": client.chain_id(w3),
            "type": 2,
        }
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction), timeout=30
        )
        assert receipt["status"] == 1, call

    if w3.eth.get_balance(sender.address) < 10**17:
        faucet = Account.from_key(client.faucet_key())
        send(faucet, {"to": sender.address, "value": 10**18, "gas": 21_000})
    assert call["from"] == sender.address and call["value"] == 0
    assert call["chainId"] == client.chain_id(w3)
    send(sender, {"to": call["to"], "data": call["data"], "value": 0, "gas": call["gas"]})


def test_a_multisig_treasury_signs_the_mint_and_imports_it_is_given(app, worker, old_project):
    project, people, vendor = old_project
    key = signers.treasury_key()  # the development key: from here on, only the signers hold it
    address = signers.treasury_address()
    app.config.update(CHAIN_TREASURY_KEY=None, CHAIN_TREASURY_ADDRESS=address)
    try:
        assert signers.multisig()
        result = app.test_cli_runner().invoke(args=["chain-migrate", "--project", str(project.id)])
        # The operator's steps are done; the mint waits for the signers, printed for them.
        assert result.exit_code == 3, result.output
        lines = [json.loads(line) for line in result.output.strip().splitlines()]
        assert lines[-1]["status"] == migrate.WAITING_FOR_SIGNERS
        (mint,) = [line["unsigned"] for line in lines if "unsigned" in line]
        assert mint["step"] == "mint" and mint["from"] == address
        assert setup.state(project.id).status == migrate.MIGRATING
        # Run again before the signers act: the same call, nothing sent twice.
        again = app.test_cli_runner().invoke(args=["chain-migrate", "--project", str(project.id)])
        assert again.exit_code == 3 and json.dumps({"unsigned": mint}) in again.output
        _wallet_send(key, mint)

        # Waiting for the signers: each list of calls is handed over as it comes due (the
        # imports once the mint is final), and the command goes on when they are on chain.
        handed: list[list[str]] = []

        def signers_act(calls):
            handed.append([c["step"] for c in calls])
            for call in calls:
                _wallet_send(key, call)

        report = migrate.run(
            project.id, wait_signers=60, on_unsigned=signers_act, poll_seconds=0.05
        )
        assert report["status"] == "done", report
        assert handed == [["import", "import"]]  # entitlements, then vendor balances
        assert migrate.unsigned_calls(project.id) == []
    finally:
        app.config.update(CHAIN_TREASURY_KEY=None, CHAIN_TREASURY_ADDRESS=None)
    worker.run("contracts")
    pc = setup.state(project.id)
    assert (pc.version, pc.status, pc.admin_address) == (2, "deployed", address)
    new = contracts.of_project(pc)
    assert new.functions.entitlementOf(addresses.pseudonym(people[0].id)).call() == 750
    assert settlement.vendor_balance(project.id, vendor.id) == 1250
    token = contracts.at(contracts.PROJECT_TOKEN_V2, pc.token_address)
    assert token.functions.totalSupply().call() == pc.funded == 10_000
    assert ledger_verify.verify([project.id]).mismatches == 0

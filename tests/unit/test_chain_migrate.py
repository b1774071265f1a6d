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

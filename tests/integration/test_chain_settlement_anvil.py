"""Version 2 on a real JSON-RPC node (anvil): a version-1 project migrated with nothing lost or
doubled, then settled, with ``ledger-verify`` reading the event log over block ranges."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.support.anvil import DEV_KEY

pytestmark = pytest.mark.integration


@pytest.fixture
def anvil_app(app_factory, database_factory, anvil_node):
    from portal.extensions import db

    app = app_factory(
        database_factory("portal_it_chain_settle"),
        WEB3_PROVIDER_URI=anvil_node.url,
        CHAIN_FAUCET_KEY=DEV_KEY,
        CHAIN_RECEIPT_WAIT_SECONDS=10,
        CHAIN_CONTRACT_VERSION=1,
        # Small ranges so that the check reads the log in several requests.
        CHAIN_LOG_BLOCK_RANGE=3,
    )
    with app.app_context():
        yield app
        db.session.remove()


def test_migrate_settle_and_verify_on_anvil(anvil_app):
    from portal.chain import contracts, ledger_verify, migrate, settlement, setup
    from portal.chain.demo import run_jobs_inline
    from portal.demo import seed_demo
    from portal.disbursements import services as disbursements
    from portal.disbursements.models import Entitlement
    from portal.extensions import db
    from portal.projects.models import Project
    from portal.vendors import services as vendors

    seed_demo(count=6)
    db.session.commit()
    project = db.session.scalar(select(Project).order_by(Project.id).limit(1))
    setup.start_deploy(project, "MIGR", 2, None)
    db.session.commit()
    run_jobs_inline()
    pc = setup.state(project.id)
    assert (pc.status, pc.version) == ("deployed", 1)
    setup.start_funding(project, 100_000, "anvil", None)
    db.session.commit()
    run_jobs_inline()
    from portal.beneficiaries.models import ProjectBeneficiary

    people = db.session.scalars(
        select(ProjectBeneficiary.beneficiary_id).where(ProjectBeneficiary.project_id == project.id)
    ).all()
    d, _ = disbursements.create(
        project,
        title="Before",
        amount=2_500,
        group_id=None,
        beneficiary_ids=people,
        batch_size=2,
        user_id=None,
    )
    disbursements.start(d, None)
    db.session.commit()
    run_jobs_inline()
    allocated = 2_500 * len(people)
    assert ledger_verify.verify([project.id]).mismatches == 0

    report = migrate.run(project.id)
    assert report["status"] == "done", report
    assert report["entitlements"] == allocated
    assert report["unallocated"] == 100_000 - allocated
    run_jobs_inline()
    pc = setup.state(project.id)
    assert pc.version == 2
    token = contracts.at(contracts.PROJECT_TOKEN_V2, pc.token_address)
    assert token.functions.totalSupply().call() == 100_000 == pc.funded
    result = ledger_verify.verify([project.id])
    assert (result.checked, result.mismatches) == (len(people) + 2, 0), result.as_dict()
    assert migrate.run(project.id)["status"] == "done"  # again: nothing more to do
    assert token.functions.totalSupply().call() == 100_000

    # A vendor assigned now is registered on the new contract; settle what it holds.
    from portal.vendors.models import Vendor

    vendor = db.session.scalar(select(Vendor).order_by(Vendor.id).limit(1))
    if vendor is None:
        vendor = vendors.register(
            {
                "name": "Anvil shop",
                "category": "shop",
                "contact_name": "O",
                "phone": "+9779800000077",
            }
        )
    vendors.assign(vendor, project)
    db.session.commit()
    run_jobs_inline()
    from portal.chain import addresses

    assert contracts.of_project(pc).functions.isVendor(addresses.vendor_address(vendor.id)).call()
    # Nothing redeemed yet: a settlement is refused by the contract, not sent.
    with pytest.raises(Exception, match="InsufficientVendorBalance"):
        settlement.prepare_settle(project.id, "anvil-1", vendor.id, 100)
    db.session.rollback()

    db.session.execute(
        update(Entitlement)
        .where(Entitlement.beneficiary_id == people[0], Entitlement.project_id == project.id)
        .values(revoked=Entitlement.revoked + 1)
    )
    db.session.commit()
    broken = ledger_verify.verify([project.id])
    assert broken.mismatches == 1
    assert f"beneficiary {people[0]}: chain 2500, database 2499" in broken.projects[0].mismatches[0]

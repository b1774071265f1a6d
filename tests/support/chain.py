"""Test helpers for the chain: a project with deployed contracts, funding and entitlements.

They drive the real services and the real jobs on the test app's in-process EVM, so what a test
builds on is what the portal would have built.
"""

from __future__ import annotations

from portal.chain import setup
from portal.disbursements import services as disbursements
from portal.extensions import db
from portal.money import amounts


def deploy(worker, project, symbol: str = "AID", decimals: int = 2):
    setup.start_deploy(project, symbol, decimals, None)
    db.session.commit()
    worker.run("contracts")
    pc = setup.state(project.id)
    assert pc.status == "deployed", pc.status
    return pc


def fund(worker, project, amount: str):
    pc = setup.state(project.id)
    funding = setup.start_funding(project, amounts.parse(amount, pc.decimals), "test funding", None)
    db.session.commit()
    worker.run("contracts")
    return funding


def allocate(worker, project, *, amount: str, group_id=None, beneficiary_ids=None, batch=100):
    disbursement, _ = disbursements.create(
        project,
        title="Test allocation",
        amount=amounts.parse(amount, setup.state(project.id).decimals),
        group_id=group_id,
        beneficiary_ids=beneficiary_ids,
        batch_size=batch,
        user_id=None,
    )
    disbursements.start(disbursement, None)
    db.session.commit()
    worker.run("contracts")
    return disbursement


def pretend_deployed(project, symbol: str = "AID", decimals: int = 2, status: str = "deployed"):
    """A project's chain state as if deployed, without a chain: for tests of what happens in
    the database before and after the chain step (codes, limits, amounts)."""
    from portal.chain.models import ProjectChain

    pc = ProjectChain(
        project_id=project.id,
        chain_id=1337,
        symbol=symbol,
        decimals=decimals,
        contract_kind="Entitlements",
        status=status,
        token_address="0x" + "11" * 20,
        contract_address="0x" + "22" * 20,
    )
    db.session.add(pc)
    return pc


def entitle(project, person, allocated: int = 10_000):
    """An entitlement row as a confirmed allocation would have left it."""
    from portal.chain.addresses import pseudonym
    from portal.disbursements.models import Entitlement

    row = Entitlement(
        project_id=project.id,
        beneficiary_id=person.id,
        address=pseudonym(person.id),
        allocated=allocated,
    )
    db.session.add(row)
    return row

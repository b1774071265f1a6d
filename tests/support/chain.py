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

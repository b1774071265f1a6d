"""Deploy, fund and allocate through the real jobs on an in-process EVM."""

from __future__ import annotations

from sqlalchemy import select

from portal.chain import addresses, contracts, setup
from portal.chain.models import ChainTx
from portal.disbursements.models import Disbursement, Entitlement
from portal.extensions import db
from tests.support import chain


def test_deploy_fund_and_allocate(app, worker, make_project, make_beneficiary):
    project = make_project(status="active")
    people = [make_beneficiary(project=project) for _ in range(5)]
    db.session.commit()

    pc = chain.deploy(worker, project)
    assert contracts.has_code(pc.token_address)
    assert contracts.has_code(pc.contract_address)

    chain.fund(worker, project, "1000.00")
    assert setup.state(project.id).funded == 100_000

    d = chain.allocate(
        worker, project, amount="12.50", beneficiary_ids=[p.id for p in people], batch=2
    )
    d = db.session.get(Disbursement, d.id)
    assert d.status == "completed"
    assert [b.status for b in d.batches] == ["confirmed"] * 3
    rows = db.session.scalars(select(Entitlement).order_by(Entitlement.beneficiary_id)).all()
    assert [r.allocated for r in rows] == [1250] * 5
    contract = contracts.at(pc.contract_kind, pc.contract_address)
    for person in people:
        assert contract.functions.entitlementOf(addresses.pseudonym(person.id)).call() == 1250
    assert contract.functions.outstanding().call() == 6250
    statuses = db.session.scalars(select(ChainTx.status)).all()
    assert set(statuses) == {"confirmed"}

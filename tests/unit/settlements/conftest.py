"""A deployed version-2 project on the in-process chain with a vendor who took payments."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.chain import setup
from portal.comms.models import OutboxMessage
from portal.extensions import db
from portal.payouts import methods
from portal.redemptions import services as redemptions
from portal.redemptions.models import SETTLED, Redemption
from tests.support import chain

CODE = re.compile(r"\b(\d{6})\b")


def last_code() -> str:
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
    return CODE.search(message.body).group(1)


def redeem(worker, project, pc, person, vendor, amount) -> Redemption:
    redemption = redemptions.start(vendor, project, pc, person, amount, "phone")
    db.session.commit()
    assert redemptions.confirm(vendor, redemption.id, last_code()).ok
    db.session.commit()
    worker.run("contracts")
    found = db.session.get(Redemption, redemption.id)
    assert found.status == SETTLED
    return found


@pytest.fixture
def world(app, worker, make_project, make_beneficiary, make_vendor, make_user):
    """(project, pc, vendor, finance user, approver user); the vendor redeemed 12.50."""
    project = make_project(status="active")
    people = [make_beneficiary(project=project) for _ in range(2)]
    vendor = make_vendor(project=project, status="approved")
    db.session.commit()
    chain.deploy(worker, project)
    chain.fund(worker, project, "100.00")
    chain.allocate(worker, project, amount="20.00", beneficiary_ids=[p.id for p in people])
    pc = setup.state(project.id)
    redeem(worker, project, pc, people[0], vendor, 1250)
    methods.add(
        vendor,
        {
            "kind": "bank",
            "account_name": "Shop Owner",
            "account_number": "0123456789",
            "bank_code": "BANKUGKA",
        },
        user_id=None,
    )
    db.session.commit()
    finance = make_user("finance")
    approver = make_user("finance approver")
    return project, pc, vendor, finance, approver

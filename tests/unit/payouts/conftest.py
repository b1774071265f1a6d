"""A project with a token, an approved vendor serving it, and the vendor's payout methods."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from portal.extensions import db
from portal.payouts import methods
from tests.support import chain


@dataclass
class PayoutWorld:
    project: object
    vendor: object
    bank: object
    momo: object
    user: object


@pytest.fixture
def payout_world(app, make_project, make_vendor, make_user):
    app.config["PAYOUT_CHECK_AFTER_SECONDS"] = 0
    user = make_user("admin")
    project = make_project(name="Winter food", status="active", currency="UGX")
    chain.pretend_deployed(project, decimals=2)
    vendor = make_vendor(project=project, status="approved", name="Corner Shop")
    bank = methods.add(
        vendor,
        {
            "kind": "bank",
            "account_name": "Corner Shop Ltd",
            "account_number": "0012 3456 7890",
            "bank_code": "STANUGKA",
        },
        user_id=user.id,
    )
    momo = methods.add(
        vendor,
        {"kind": "momo", "account_name": "Asha K", "account_number": "+256772123456"},
        user_id=user.id,
    )
    db.session.commit()
    return PayoutWorld(project, vendor, bank, momo, user)

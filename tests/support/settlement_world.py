"""Vendors with something to cash out, for the settlement bench and the settlement chaos test.

Made through the portal's services in an in-process app on the stack's database
(``project_world``; the chain work is done by the stack's worker processes): a project on a
version-2 contract, one person per vendor allocated ``amount``, and each vendor paid that
whole amount by its person in **one** redemption (so a thousand settlements need only a tenth
as many payments, none of them typed). Each vendor has a mobile-money payout account, its default.

The balances are real: the chain's ``Redeemed`` events and the database's settled redemptions
agree, so ``ledger-verify`` has something true to compare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.support.project_world import allocated_project, wait_until

CODE = re.compile(r"\b(\d{6})\b")


@dataclass
class World:
    project_id: int
    vendor_ids: list[int]
    amount: int  # each vendor's balance, base units


def person_phone(i: int) -> str:
    return f"98{46_000_000 + i:08d}"


def shop_phone(i: int) -> str:
    return f"98{47_000_000 + i:08d}"


def momo_number(i: int) -> str:
    return f"+256772{i:06d}"


def make(*, vendors: int, amount: int, timeout: float = 300, name: str = "Settlement") -> World:
    """The project, its vendors and their balances; returns once every payment is settled."""
    from sqlalchemy import event, func, select

    from portal.accounts.models import User
    from portal.beneficiaries.models import Beneficiary
    from portal.chain import setup
    from portal.comms.models import OutboxMessage
    from portal.extensions import db
    from portal.payouts import methods
    from portal.projects.models import Project
    from portal.redemptions import services as redemptions
    from portal.redemptions.models import SETTLED, Redemption
    from portal.vendors.models import Vendor, VendorProject

    admin = db.session.scalar(select(User).order_by(User.id).limit(1))
    pid, person_ids = allocated_project(
        admin,
        name=name,
        label="Everyone",
        symbol="STL",
        phones=[person_phone(i) for i in range(vendors)],
        shops=[(f"Shop {i:04d}", shop_phone(i)) for i in range(vendors)],
        amount_each=amount,
        timeout=timeout,
    )
    if setup.state(pid).version < 2:
        raise RuntimeError("settlement needs a version-2 contract (CHAIN_CONTRACT_VERSION)")
    vendor_ids = list(
        db.session.scalars(
            select(VendorProject.vendor_id)
            .where(VendorProject.project_id == pid)
            .order_by(VendorProject.vendor_id)
        )
    )
    for i, vendor_id in enumerate(vendor_ids):
        account = {"kind": "momo", "account_name": f"Owner {i}", "account_number": momo_number(i)}
        methods.add(db.session.get(Vendor, vendor_id), account)
    db.session.commit()

    # Each person pays their vendor everything, with the code the SMS carried (read as the
    # outbox row is written, in this process).
    codes: list[str] = []

    def keep(mapper, connection, target):
        if target.purpose == "redemption.code":
            codes.append(CODE.search(target.body).group(1))

    event.listen(OutboxMessage, "after_insert", keep)
    try:
        project = db.session.get(Project, pid)
        pc = setup.state(pid)
        for vendor_id, person_id in zip(vendor_ids, person_ids, strict=True):
            vendor = db.session.get(Vendor, vendor_id)
            person = db.session.get(Beneficiary, person_id)
            started = redemptions.start(vendor, project, pc, person, amount, "card")
            db.session.commit()
            result = redemptions.confirm(vendor, started.id, codes[-1])
            db.session.commit()
            if result.outcome != "accepted":
                raise RuntimeError(f"a seeding payment was not accepted: {result.outcome}")
    finally:
        event.remove(OutboxMessage, "after_insert", keep)

    def all_settled():
        done = db.session.scalar(
            select(func.count())
            .select_from(Redemption)
            .where(Redemption.project_id == pid, Redemption.status == SETTLED)
        )
        return done == vendors

    wait_until(all_settled, "every seeding payment settled on chain", timeout)
    return World(pid, vendor_ids, amount)

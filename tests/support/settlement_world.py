"""Vendors with something to cash out, for the settlement bench and the settlement chaos test.

Made through the portal's services in an in-process app on the stack's database (its chain
work, deploying, minting, allocating, registering vendors and the transfers, is done by the
stack's worker processes, as for staff clicking the same buttons): a project on a version-2
contract, one person per vendor allocated ``amount``, and each vendor paid that whole amount
by its person in **one** redemption (so a thousand settlements need only a tenth as many
payments, none of them typed). Each vendor has a mobile-money payout account, its default.

The balances are real: the chain's ``Redeemed`` events and the database's settled redemptions
agree, so ``ledger-verify`` has something true to compare.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

CODE = re.compile(r"\b(\d{6})\b")


@dataclass
class World:
    project_id: int
    vendor_ids: list[int]
    amount: int  # each vendor's balance, base units


def wait_until(check, what: str, timeout: float, every: float = 0.1):
    """Poll ``check()`` in a fresh transaction each time until it gives something true."""
    from portal.extensions import db

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


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
    from portal.beneficiaries import groups
    from portal.beneficiaries import services as beneficiaries
    from portal.beneficiaries.models import Beneficiary
    from portal.chain import setup
    from portal.comms.models import OutboxMessage
    from portal.disbursements import services as disbursements
    from portal.disbursements.models import Disbursement
    from portal.extensions import db
    from portal.payouts import methods
    from portal.projects import services as projects
    from portal.projects.models import Project
    from portal.redemptions import services as redemptions
    from portal.redemptions.models import SETTLED, Redemption
    from portal.vendors import services as vendor_services
    from portal.vendors.models import Vendor

    admin = db.session.scalar(select(User).order_by(User.id).limit(1))
    project = projects.create({"name": name, "type": "cva"}, admin)
    projects.change_status(project, "active")
    people = [
        beneficiaries.create({"name": f"Person {i}", "phone": person_phone(i)}, project=project)
        for i in range(vendors)
    ]
    group = groups.create(project, "Everyone", "everyone on the list")
    groups.add_members(group, people)
    shops = []
    for i in range(vendors):
        shop = vendor_services.register(
            {
                "name": f"Shop {i:04d}",
                "phone": shop_phone(i),
                "category": "shop",
                "contact_name": "Owner",
            },
            project=project,
        )
        vendor_services.change_status(shop, "approved")
        account = {"kind": "momo", "account_name": f"Owner {i}", "account_number": momo_number(i)}
        methods.add(shop, account)
        shops.append(shop)
    setup.start_deploy(project, "STL", 2, None)
    db.session.commit()
    pid = project.id
    vendor_ids = [s.id for s in shops]
    person_ids = [p.id for p in people]

    wait_until(lambda: setup.state(pid).status == "deployed", "the contracts' deployment", timeout)
    if setup.state(pid).version < 2:
        raise RuntimeError("settlement needs a version-2 contract (CHAIN_CONTRACT_VERSION)")
    setup.start_funding(db.session.get(Project, pid), amount * vendors, "settlements", None)
    db.session.commit()
    wait_until(lambda: setup.state(pid).funded > 0, "the funding", timeout)
    disbursement, _ = disbursements.create(
        db.session.get(Project, pid),
        title="Everyone",
        amount=amount,
        group_id=group.id,
        beneficiary_ids=None,
        batch_size=500,
        user_id=None,
    )
    disbursements.start(disbursement, None)
    db.session.commit()
    did = disbursement.id
    wait_until(
        lambda: db.session.get(Disbursement, did).status == "completed", "the allocation", timeout
    )

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

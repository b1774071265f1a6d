"""A project ready to pay people, made through the portal's own services: people in a group,
approved vendors, contracts deployed, funded and everyone allocated.

Runs inside an in-process app on a stack's database; the chain work it asks for (deploying,
minting, allocating, registering vendors) is done by the stack's worker processes, as it would
be for staff clicking the same buttons. Every wait has a deadline. Used by the benchmarks and
by the tests that drive a stack of processes.
"""

from __future__ import annotations

import time


def wait_until(check, what: str, timeout: float = 180, every: float = 0.1):
    """Poll ``check()`` (in a fresh transaction each time) until it returns something true."""
    from portal.extensions import db

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def allocated_project(
    admin,
    *,
    name: str,
    label: str,
    symbol: str,
    phones: list[str],
    shops: list[tuple[str, str]],
    amount_each: int,
    timeout: float,
    every: float = 0.1,
) -> tuple[int, list[int]]:
    """An active project with one person per phone in one group, approved vendors (name,
    phone), contracts deployed, enough minted and everyone allocated ``amount_each``, all
    through the portal's services (the chain work by the worker processes). The project id and
    the people's ids."""
    from portal.beneficiaries import groups
    from portal.beneficiaries import services as beneficiaries
    from portal.chain import setup
    from portal.disbursements import services as disbursements
    from portal.disbursements.models import Disbursement
    from portal.extensions import db
    from portal.projects import services as projects
    from portal.projects.models import Project
    from portal.vendors import services as vendor_services

    project = projects.create({"name": name, "type": "cva"}, admin)
    projects.change_status(project, "active")
    persons = [
        beneficiaries.create({"name": f"Person {i}", "phone": p}, project=project)
        for i, p in enumerate(phones)
    ]
    group = groups.create(project, label, "everyone on the list")
    groups.add_members(group, persons)
    for shop_name, phone in shops:
        shop = vendor_services.register(
            {"name": shop_name, "phone": phone, "category": "shop", "contact_name": "Owner"},
            project=project,
        )
        vendor_services.change_status(shop, "approved")
    setup.start_deploy(project, symbol, 2, None)
    db.session.commit()
    pid = project.id
    beneficiary_ids = [p.id for p in persons]

    def wait(check, what: str) -> None:
        wait_until(check, what, timeout, every)

    wait(lambda: setup.state(pid).status == "deployed", "the contracts' deployment")
    funding = amount_each * len(phones)
    setup.start_funding(db.session.get(Project, pid), funding, label.lower(), None)
    db.session.commit()
    wait(lambda: setup.state(pid).funded > 0, "the funding")
    disbursement, _ = disbursements.create(
        db.session.get(Project, pid),
        title=label,
        amount=amount_each,
        group_id=group.id,
        beneficiary_ids=None,
        batch_size=500,
        user_id=None,
    )
    disbursements.start(disbursement, None)
    db.session.commit()
    did = disbursement.id
    wait(lambda: db.session.get(Disbursement, did).status == "completed", "the allocation")
    return pid, beneficiary_ids

"""Demo data for ``make run``: an admin, a project, 50 beneficiaries, 3 vendors, a group, and
on the embedded chain the project's contracts, funding, a first allocation, payments at two
vendors and their cash-outs in several states."""

from __future__ import annotations

import random
import secrets
from datetime import date

from sqlalchemy import select

from portal.accounts import passwords
from portal.accounts import services as accounts
from portal.accounts.models import User
from portal.beneficiaries import groups
from portal.beneficiaries import services as beneficiaries
from portal.chain.demo import seed_chain
from portal.extensions import db
from portal.projects import services as projects
from portal.settlements.demo import seed_settlements
from portal.timeutil import utcnow
from portal.vendors import services as vendors

ADMIN_EMAIL = "admin@example.org"
# The second pair of eyes on money: funding and disbursements need someone besides the asker.
APPROVER_EMAIL = "approver@example.org"
GIVEN = ["Sita", "Ram", "Gita", "Hari", "Maya", "Bikash", "Asha", "Sunil", "Kamala", "Dipak"]
FAMILY = ["Tamang", "Gurung", "Shrestha", "Rai", "Magar", "Thapa", "Karki", "Lama", "Sherpa", "BK"]
WARDS = ["Ward 1, Sindhupalchok", "Ward 4, Sindhupalchok", "Ward 7, Dolakha", "Ward 2, Kavre"]


def _demo_password(email: str = ADMIN_EMAIL, name: str = "Demo Admin") -> str:
    """16 random URL-safe characters; drawn again in the rare case the policy refuses them."""
    while True:
        password = secrets.token_urlsafe(12)
        try:
            passwords.check(password, user_inputs=(email, name))
        except passwords.WeakPassword:
            continue
        return password


def seed_demo(count: int = 50) -> dict[str, str] | None:
    """Seed once; returns the new accounts' passwords by email (the admin, and the finance
    approver who approves the demo's funding and allocation), or None when already seeded."""
    if db.session.scalar(select(User.id).where(User.email == ADMIN_EMAIL)):
        return None
    rng = random.Random(7)
    roles = accounts.seed_roles()
    password = _demo_password()
    admin = accounts.create_user(ADMIN_EMAIL, "Demo Admin", password, roles["admin"])
    approver_password = _demo_password(APPROVER_EMAIL, "Demo Approver")
    approver = accounts.create_user(
        APPROVER_EMAIL, "Demo Approver", approver_password, roles["finance approver"]
    )
    project = projects.create(
        {
            "name": "Winter Relief 2026",
            "type": "cva",
            "description": "Food and warm-clothing vouchers spent at local shops.",
            "location": "Sindhupalchok",
            "currency": "NPR",
            "start_date": date(2026, 11, 1),
            "end_date": date(2027, 2, 28),
        },
        admin,
    )
    projects.change_status(project, "active")
    projects.set_members(project, {admin.id, approver.id})
    group = groups.create(project, "First distribution", "Households in wards 1 and 4")
    people = []
    for i in range(count):
        person = beneficiaries.create(
            {
                "name": f"{rng.choice(GIVEN)} {rng.choice(FAMILY)}",
                "phone": f"98{41000000 + i * 7919:08d}",
                "national_id": f"NP{rng.randrange(10**9, 10**10)}",
                "date_of_birth": date(
                    rng.randrange(1950, 2005), rng.randrange(1, 13), rng.randrange(1, 28)
                ),
                "location": rng.choice(WARDS),
                "gender": rng.choice(["female", "male"]),
                "consent_at": utcnow(),
            },
            project=project,
        )
        people.append(person)
    groups.add_members(group, people[:20])
    for i, (name, category, status) in enumerate(
        [
            ("Tamang General Store", "shop", "approved"),
            ("Sindhu Pharmacy", "pharmacy", "approved"),
            ("Valley Vision Centre", "clinic", "pending"),
        ]
    ):
        vendor = vendors.register(
            {
                "name": name,
                "category": category,
                "contact_name": f"{GIVEN[i]} {FAMILY[-i - 1]}",
                "phone": f"98510{i:05d}",
                "location": WARDS[i],
            },
            project,
        )
        if status == "approved":
            vendors.change_status(vendor, "approved")
    db.session.commit()
    # On the embedded chain the project starts deployed, funded and with its group allocated,
    # so a vendor can charge a beneficiary at once.
    if seed_chain(project, group, requester=admin, approver=approver):
        seed_settlements(project, requester=admin, approver=approver)
    return {ADMIN_EMAIL: password, APPROVER_EMAIL: approver_password}

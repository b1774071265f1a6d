"""The distribution day's starting point, made through the portal's own services.

Runs inside a worker-role app of the benchmark process (its own small pool); the chain work it
asks for (deploying, minting, allocating) is done by the Procfile's worker processes, as it would
be for staff clicking the same buttons. Every wait has a deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import _data

from tests.support.project_world import allocated_project, wait_until

__all__ = ["Seeded", "allocated_project", "seed", "vendor_phone", "wait_until"]

AMOUNT_EACH = 1_000_000  # base units each person is allocated (10,000.00 at 2 decimals)


@dataclass
class Seeded:
    project_id: int
    vendor_phones: list[str]
    # vendor index -> the phones of the people that vendor charges (each person has one vendor,
    # so a person never has two payments waiting at once)
    payers: list[list[str]]
    beneficiary_ids: list[int] = field(default_factory=list)
    staff: list[tuple[str, str]] = field(default_factory=list)  # (email, password)


def vendor_phone(j: int) -> str:
    return _data.phone_of(5_000_000 + j)  # far from the people's numbers


def seed(
    *, vendors: int, people_per_vendor: int, staff: int, password: str, timeout: float = 300
) -> Seeded:
    from sqlalchemy import select

    from portal.accounts import services as accounts
    from portal.accounts.models import User
    from portal.extensions import db

    admin = db.session.scalar(select(User).order_by(User.id).limit(1))
    role = accounts.role_by_name("admin")
    staff_logins = [(admin.email, password)]
    for k in range(1, staff):
        email = f"day-staff-{k}@example.org"
        accounts.create_user(email, f"Staff {k}", password, role)
        staff_logins.append((email, password))

    phones = [_data.phone_of(i) for i in range(vendors * people_per_vendor)]
    vendor_phones = [vendor_phone(j) for j in range(vendors)]
    pid, beneficiary_ids = allocated_project(
        admin,
        name="Distribution day",
        label="Day",
        symbol="DAY",
        phones=phones,
        shops=[(f"Shop {j}", phone) for j, phone in enumerate(vendor_phones)],
        amount_each=AMOUNT_EACH,
        timeout=timeout,
    )
    payers = [phones[j::vendors] for j in range(vendors)]
    return Seeded(pid, vendor_phones, payers, beneficiary_ids, staff_logins)

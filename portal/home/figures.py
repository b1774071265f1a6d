"""Where each project stands, for the home page: funded, allocated, spent, remaining, people
served and today's payments.

Every figure comes from a row the database already keeps up to date: the funded total on the
project's chain row and the running totals the dashboard's triggers maintain
(``portal.dashboard.models``). A handful of queries serve every project on the page at once,
each reading at most a few hundred small rows per project, however many people or payments
there are: no query here grows with the number of people or redemptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from portal.chain.models import ProjectChain
from portal.dashboard.models import minute_totals, people_totals, vendor_totals
from portal.extensions import db
from portal.redemptions.models import IN_FLIGHT, SETTLED
from portal.timeutil import utcnow


@dataclass
class Figures:
    """One project's money in base units of its token, and its people."""

    decimals: int = 0
    chain_status: str | None = None
    funded: int = 0
    allocated: int = 0
    spent: int = 0  # confirmed payments at vendors
    pending: int = 0  # accepted payments whose transfer is not confirmed yet
    remaining: int = 0  # what people can still spend
    revoked: int = 0
    people: int = 0  # people with something allocated
    served: int = 0  # people who have spent at least once
    today_count: int = 0
    today_amount: int = 0

    @property
    def unallocated(self) -> int:
        """Funded but not yet given to anyone (what came back from revoked entitlements
        included)."""
        return max(self.funded + self.revoked - self.allocated, 0)


def first_minute_of_day(now: datetime) -> int:
    """The epoch minute at which ``now``'s UTC day began (the running totals' minute key)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC)
    return int(midnight.timestamp()) // 60


def for_projects(project_ids: list[int], now: datetime | None = None) -> dict[int, Figures]:
    """Figures of each project in ``project_ids`` (missing projects get zeros)."""
    found = {pid: Figures() for pid in project_ids}
    if not project_ids:
        return found
    for pid, decimals, status, funded in db.session.execute(
        select(
            ProjectChain.project_id,
            ProjectChain.decimals,
            ProjectChain.status,
            ProjectChain.funded,
        ).where(ProjectChain.project_id.in_(project_ids))
    ):
        f = found[pid]
        f.decimals, f.chain_status, f.funded = decimals or 0, status, int(funded or 0)

    p = people_totals.c
    for pid, allocated, reserved, revoked, people, served in db.session.execute(
        select(
            p.project_id,
            func.sum(p.allocated),
            func.sum(p.redeemed),
            func.sum(p.revoked),
            func.sum(p.people),
            func.sum(p.served),
        )
        .where(p.project_id.in_(project_ids))
        .group_by(p.project_id)
    ):
        f = found[pid]
        f.allocated, f.revoked = int(allocated or 0), int(revoked or 0)
        # A pending payment has already taken its share of the entitlement.
        f.remaining = f.allocated - int(reserved or 0) - f.revoked
        f.people, f.served = int(people or 0), int(served or 0)

    v = vendor_totals.c
    for pid, status, amount in db.session.execute(
        select(v.project_id, v.status, func.sum(v.amount))
        .where(v.project_id.in_(project_ids), v.status.in_((*IN_FLIGHT, SETTLED)))
        .group_by(v.project_id, v.status)
    ):
        if status == SETTLED:
            found[pid].spent += int(amount or 0)
        else:
            found[pid].pending += int(amount or 0)

    m = minute_totals.c
    since = first_minute_of_day(now or utcnow())
    for pid, count, amount in db.session.execute(
        select(m.project_id, func.sum(m.count), func.sum(m.amount))
        .where(m.project_id.in_(project_ids), m.minute >= since)
        .group_by(m.project_id)
    ):
        found[pid].today_count = int(count or 0)
        found[pid].today_amount = int(amount or 0)
    return found

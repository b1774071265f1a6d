"""What waits for the signed-in user in each project: requests they may decide (fundings,
starts of disbursements, settlements) and failed jobs, each counted in one grouped query."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from portal.approvals import kinds
from portal.approvals import services as approvals
from portal.approvals.models import ApprovalRequest
from portal.extensions import db
from portal.jobs.models import FAILED, Job


@dataclass
class Waiting:
    approvals: dict[str, int] = field(default_factory=dict)  # kind label -> count
    failed_jobs: int = 0

    @property
    def total(self) -> int:
        return sum(self.approvals.values()) + self.failed_jobs


def for_projects(user, project_ids: list[int]) -> dict[int, Waiting]:
    found = {pid: Waiting() for pid in project_ids}
    if not project_ids:
        return found
    if user.can("project.read"):
        mine = (
            approvals.waiting_for(user)
            .order_by(None)
            .where(ApprovalRequest.project_id.in_(project_ids))
            .subquery()
        )
        rows = db.session.execute(
            select(mine.c.project_id, mine.c.kind, func.count()).group_by(
                mine.c.project_id, mine.c.kind
            )
        )
        for pid, kind, count in rows:
            label = str(kinds.KINDS[kind].label) if kind in kinds.KINDS else kind
            found[pid].approvals[label] = count
    if user.can("job.read"):
        # The projects were scoped to the user already: their jobs are visible to them.
        rows = db.session.execute(
            select(Job.project_id, func.count())
            .where(Job.project_id.in_(project_ids), Job.status == FAILED)
            .group_by(Job.project_id)
        )
        for pid, count in rows:
            found[pid].failed_jobs = count
    return found

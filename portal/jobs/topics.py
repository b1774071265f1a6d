"""Socket.IO topics for jobs: the whole visible list, or one job."""

from __future__ import annotations

from flask import current_app

from portal import realtime
from portal.extensions import db
from portal.jobs import lease_watch, live, problems, services
from portal.projects.services import visible_project_ids


@realtime.topic("jobs", "job.read")
def jobs_topic(user, params: dict):
    lease_watch.for_app(current_app._get_current_object()).wanted()
    ids = visible_project_ids(user)
    if ids is None:
        rooms = [live.ALL_JOBS_ROOM]
    else:
        rooms = [live.project_jobs_room(pid) for pid in sorted(ids)]
    recent = db.session.scalars(services.search(user, services.JobFilter()).limit(50)).all()
    return rooms, {
        "counts": services.status_counts(user),
        "jobs": [live.serialize(job) for job in recent],
    }


@realtime.topic("job", "job.read")
def job_topic(user, params: dict):
    job = services.get_visible(user, realtime.id_param(params, "id"))
    lease_watch.for_app(current_app._get_current_object()).wanted()
    return [live.job_room(job.id)], {
        "job": live.serialize(job),
        "attempts": [
            {
                "number": a.number,
                "outcome": a.outcome,
                "problem": a.problem_shown,
                **problems.wire(a.problem, a.error, a.job_id, a.number),
                "started_at": a.started_at.isoformat(),
                "finished_at": a.finished_at.isoformat() if a.finished_at else None,
            }
            for a in services.attempts_of(job)
        ],
    }

"""The audit log page, its verification and its CSV export."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta

from flask import Blueprint, Response, render_template, request, stream_with_context
from flask_login import current_user
from sqlalchemy import select

from portal.accounts.guards import permission_required
from portal.audit import services
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.projects import services as projects

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _query():
    # A project-scoped reader sees the entries of their projects only; entries tied to no
    # project (sign-ins, users, roles, settings) are for readers who see every project.
    query = projects.scope(select(AuditEntry), AuditEntry.project_id, current_user)
    action = request.args.get("action", "").strip()
    if action:
        query = query.where(AuditEntry.action.startswith(action[:64]))
    actor = request.args.get("actor", "")
    if actor.isdigit():
        query = query.where(AuditEntry.actor_id == int(actor))
    project = request.args.get("project", "")
    if project.isdigit():
        query = query.where(AuditEntry.project_id == int(project))
    target = request.args.get("target", "").strip()
    if target:
        query = query.where(AuditEntry.target_type == target[:40])
    for name, op in (("since", "ge"), ("until", "lt")):
        try:
            day = date.fromisoformat(request.args.get(name, ""))
        except ValueError:
            continue
        if op == "ge":
            query = query.where(AuditEntry.at >= datetime.combine(day, time.min))
        else:
            query = query.where(AuditEntry.at < datetime.combine(day + timedelta(days=1), time.min))
    return query.order_by(AuditEntry.seq.desc())


@bp.get("/")
@permission_required("audit.read")
def index():
    page = db.paginate(
        _query(), page=request.args.get("page", 1, type=int), per_page=50, error_out=False
    )
    return render_template("audit/index.html", page=page, args=request.args)


@bp.get("/verify")
@permission_required("audit.read")
def verify():
    return render_template("audit/verify.html", result=services.verify())


@bp.get("/export.csv")
@permission_required("audit.read")
def export():
    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["seq", "at", "actor", "action", "target", "project", "summary", "hash"])
        yield buffer.getvalue()
        for entry in db.session.scalars(_query().execution_options(yield_per=500)):
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(
                [
                    entry.seq,
                    entry.at.isoformat(),
                    entry.actor_label,
                    entry.action,
                    f"{entry.target_type or ''}:{entry.target_id or ''}",
                    entry.project_id or "",
                    entry.summary,
                    entry.hash,
                ]
            )
            yield buffer.getvalue()

    return Response(
        stream_with_context(rows()),  # the rows read request.args and db.session
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=audit-log.csv"},
    )

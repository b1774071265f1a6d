"""The audit log page, its verification and its CSV export."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta

from flask import Blueprint, Response, render_template, request, stream_with_context
from flask_login import current_user
from sqlalchemy import select

from portal import inputs
from portal.accounts.guards import permission_required
from portal.audit import names, services
from portal.audit.models import AuditEntry
from portal.beneficiaries.exports import escape_cell
from portal.extensions import db
from portal.projects import services as projects

bp = Blueprint("audit", __name__, url_prefix="/audit")


def _query():
    # A project-scoped reader sees the entries of their projects only; entries tied to no
    # project (sign-ins, users, roles, settings) are for readers who see every project.
    query = projects.scope(select(AuditEntry), AuditEntry.project_id, current_user)
    action = inputs.text_arg("action", 64)
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    actor = inputs.id_arg("actor")
    if actor:
        query = query.where(AuditEntry.actor_id == actor)
    project = inputs.id_arg("project")
    if project:
        query = query.where(AuditEntry.project_id == project)
    target = inputs.text_arg("target", 40)
    if target:
        query = query.where(AuditEntry.target_type == target)
    since, until = inputs.date_arg("since"), inputs.date_arg("until")
    if since:
        query = query.where(AuditEntry.at >= datetime.combine(since, time.min))
    if until:
        query = query.where(AuditEntry.at < datetime.combine(until + timedelta(days=1), time.min))
    return query.order_by(AuditEntry.seq.desc())


@bp.app_template_global("audit_shown")
def audit_shown(entries) -> dict:
    """Entry id → who and summary with names, as the signed-in reader may see them."""
    return names.resolve(entries, current_user)


@bp.get("/")
@permission_required("audit.read")
def index():
    page = db.paginate(_query(), page=inputs.page_arg(), per_page=50, error_out=False)
    return render_template("audit/index.html", page=page, args=request.args)


@bp.get("/verify")
@permission_required("audit.read")
def verify():
    return render_template("audit/verify.html", result=services.verify())


@bp.get("/export.csv")
@permission_required("audit.read")
def export():
    query = _query()  # a bad filter is refused before the first row is sent

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["seq", "at", "actor", "action", "target", "project", "summary", "hash"])
        yield buffer.getvalue()
        for entry in db.session.scalars(query.execution_options(yield_per=500)):
            buffer.seek(0)
            buffer.truncate()
            # Text cells as in the beneficiary export: no formulas, no control characters.
            writer.writerow(
                [
                    entry.seq,
                    entry.at.isoformat(),
                    escape_cell(entry.actor_label),
                    escape_cell(entry.action),
                    escape_cell(f"{entry.target_type or ''}:{entry.target_id or ''}"),
                    entry.project_id or "",
                    escape_cell(entry.summary),
                    entry.hash,
                ]
            )
            yield buffer.getvalue()

    return Response(
        stream_with_context(rows()),  # the rows read db.session inside the request
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=audit-log.csv"},
    )

"""The home page and the health check."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select

from portal.accounts.guards import public, signed_in
from portal.approvals import services as approvals
from portal.beneficiaries import services as beneficiaries
from portal.extensions import db
from portal.health import report as health_report
from portal.jobs import attention
from portal.jobs import services as jobs
from portal.projects import services as projects
from portal.vendors import services as vendors

bp = Blueprint("main", __name__)


def _count(query) -> int:
    return db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))


@bp.get("/")
@signed_in
def home():
    user = current_user
    figures = {}
    if user.can("project.read"):
        figures["projects"] = _count(projects.visible_projects(user))
    if user.can("beneficiary.read"):
        figures["beneficiaries"] = _count(beneficiaries.visible(user))
    if user.can("vendor.read"):
        figures["vendors"] = _count(vendors.visible(user))
    counts = jobs.status_counts(user) if user.can("job.read") else None
    recent = (
        db.session.scalars(projects.visible_projects(user).limit(6)).all()
        if user.can("project.read")
        else []
    )
    approvals_count = approvals.waiting_count(user) if user.can("project.read") else None
    return render_template(
        "main/home.html",
        approvals_count=approvals_count,
        figures=figures,
        job_counts=counts,
        attention=attention.for_user(user),
        recent=recent,
    )


@bp.get("/health")
@public
def health():
    healthy, body = health_report(current_app._get_current_object())
    return jsonify(body), 200 if healthy else 503


@bp.get("/favicon.ico")
@public
def favicon():
    return redirect(url_for("static", filename="img/favicon.svg"))

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
from portal.home import checklist
from portal.home import figures as home_figures
from portal.home import waiting as home_waiting
from portal.jobs import attention
from portal.jobs import services as jobs
from portal.projects import services as projects
from portal.projects.models import ACTIVE, CLOSED, Project
from portal.vendors import services as vendors

bp = Blueprint("main", __name__)
# Projects with a card of their own on the home page; the others are one click away.
HOME_PROJECTS = 6


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
        # Exact up to the list's limit, then the planner's estimate: a page load must not read
        # every person's row (the list's own total does the same).
        figures["beneficiaries"], figures["beneficiaries_known"] = beneficiaries.count_of(
            beneficiaries.visible(user)
        )
    if user.can("vendor.read"):
        figures["vendors"] = _count(vendors.visible(user))
    counts = jobs.status_counts(user) if user.can("job.read") else None
    cards = _project_cards(user) if user.can("project.read") else []
    approvals_count = approvals.waiting_count(user) if user.can("project.read") else None
    return render_template(
        "main/home.html",
        approvals_count=approvals_count,
        figures=figures,
        job_counts=counts,
        attention=attention.for_user(user),
        cards=cards,
        more_projects=figures.get("projects", 0) > len(cards),
    )


def _project_cards(user) -> list[dict]:
    """Open projects, active ones first, with their figures, what waits for the user in each
    and, while a project is not yet running, its getting-started steps."""
    shown = db.session.scalars(
        projects.visible_projects(user)
        .where(Project.status != CLOSED)
        .order_by(None)
        .order_by((Project.status == ACTIVE).desc(), Project.name)
        .limit(HOME_PROJECTS)
    ).all()
    ids = [p.id for p in shown]
    numbers = home_figures.for_projects(ids)
    waits = home_waiting.for_projects(user, ids)
    plans = checklist.for_projects(user, shown, numbers)
    cards = []
    for project in shown:
        steps = plans[project.id]
        cards.append(
            {
                "project": project,
                "figures": numbers[project.id],
                "waiting": waits[project.id],
                "steps": steps if checklist.unfinished(steps) else [],
            }
        )
    return cards


@bp.get("/health")
@public
def health():
    healthy, body = health_report(current_app._get_current_object())
    return jsonify(body), 200 if healthy else 503


@bp.get("/favicon.ico")
@public
def favicon():
    return redirect(url_for("static", filename="img/favicon.svg"))

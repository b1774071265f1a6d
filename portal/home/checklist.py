"""Getting started with a project: enrol people, add vendors, fund, allocate, distribute.

Each step ticks itself from the data (never from a box someone ticked), so the checklist stays
right whatever page or import did the work. A step links to the page where it is done; a step
the user may not do names the roles that may. The reads are ``EXISTS`` probes on indexed
columns and the figures already read for the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import exists, select

from portal.accounts.models import Role, RolePermission
from portal.beneficiaries.models import ProjectBeneficiary
from portal.disbursements.models import COMPLETED, Disbursement
from portal.extensions import db
from portal.home.figures import Figures
from portal.projects.models import Project
from portal.vendors.models import VendorProject


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    hint: str
    done: bool
    url: str | None  # where to do it, when the user may
    who: str  # who may do it, when the user may not


def _roles_with(permissions: set[str]) -> dict[str, list[str]]:
    rows = db.session.execute(
        select(RolePermission.permission, Role.name)
        .join(Role, Role.id == RolePermission.role_id)
        .where(RolePermission.permission.in_(permissions))
        .order_by(Role.name)
    )
    found: dict[str, list[str]] = {p: [] for p in permissions}
    for permission, name in rows:
        found[permission].append(name)
    return found


def _who(names: list[str]) -> str:
    if not names:
        return _("No role may do this yet: ask an administrator to give a role this permission.")
    if len(names) == 1:
        shown = names[0]
    else:
        shown = _("%(names)s or %(last)s", names=", ".join(names[:-1]), last=names[-1])
    return _("Someone with the role %(roles)s does this.", roles=shown)


def _progress(project_ids: list[int]) -> dict[int, tuple[bool, bool, bool]]:
    """(anyone enrolled, any vendor assigned, any disbursement completed) per project: three
    ``EXISTS`` probes on indexed columns for every project, in one query."""
    rows = db.session.execute(
        select(
            Project.id,
            exists().where(ProjectBeneficiary.project_id == Project.id),
            exists().where(VendorProject.project_id == Project.id),
            exists().where(Disbursement.project_id == Project.id, Disbursement.status == COMPLETED),
        ).where(Project.id.in_(project_ids))
    )
    return {pid: (bool(a), bool(b), bool(c)) for pid, a, b, c in rows}


def for_projects(user, shown: list[Project], figures: dict[int, Figures]) -> dict[int, list[Step]]:
    """The steps of each project in ``shown`` for ``user``, in the order they are done."""
    if not shown:
        return {}
    progress = _progress([p.id for p in shown])
    plans = {p.id: _plan(p, figures[p.id], *progress[p.id]) for p in shown}
    permissions = {step[4] for plan in plans.values() for step in plan}
    roles = _roles_with(permissions)
    return {
        pid: [
            Step(
                key=key,
                title=title,
                hint=hint,
                done=done,
                url=url if user.can(permission) else None,
                who="" if user.can(permission) else _who(roles[permission]),
            )
            for key, title, hint, done, permission, url in plan
        ]
        for pid, plan in plans.items()
    }


def _plan(project: Project, figures: Figures, enrolled: bool, vendors: bool, sent: bool) -> list:
    """(key, title, hint, done, permission, url) of each step of ``project``."""
    cash = project.type == "cash"
    plan = [
        (
            "enrol",
            _("Enrol people"),
            _("Import a list or register people one by one, then add them to this project."),
            enrolled,
            "beneficiary.manage",
            url_for("imports.new"),
        )
    ]
    if not cash:
        plan.append(
            (
                "vendors",
                _("Add vendors"),
                _("Register the shops where people spend, and assign them to this project."),
                vendors,
                "vendor.manage",
                url_for("vendors.index"),
            )
        )
    plan.append(
        (
            "fund",
            _("Fund the project"),
            _("Set up the project's account and put money into it; someone else approves."),
            figures.funded > 0,
            "chain.manage",
            url_for("chain.project_chain", project_id=project.id),
        )
    )
    if cash:
        plan.append(
            (
                "allocate",
                _("Send cash"),
                _("Choose a group and an amount per person; someone else approves the start."),
                sent,
                "disbursement.manage",
                url_for("disbursements.new", project_id=project.id),
            )
        )
        return plan
    return [
        *plan,
        (
            "allocate",
            _("Allocate"),
            _("Give each person of a group an amount they may spend; someone else approves."),
            figures.allocated > 0,
            "disbursement.manage",
            url_for("disbursements.new", project_id=project.id),
        ),
        (
            "distribute",
            _("Distribute"),
            _("People spend at the vendors with a one-time code; follow it live."),
            figures.spent + figures.pending > 0,
            "dashboard.read",
            url_for("dashboard.live", project_id=project.id),
        ),
    ]


def unfinished(items: list[Step]) -> bool:
    return not all(step.done for step in items)

"""Getting started with a project: enrol people, add vendors, fund, allocate, distribute.

Each step ticks itself from the data (never from a box someone ticked), so the checklist stays
right whatever page or import did the work. A step links to the page where it is done; a step
the user may not do names the roles that may. The reads are ``EXISTS`` probes on indexed
columns and the figures already read for the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import url_for
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
        return "No role may do this yet: ask an administrator to give a role this permission."
    shown = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"Someone with the role {shown} does this."


def _has(model, project_id: int) -> bool:
    return bool(db.session.scalar(select(exists().where(model.project_id == project_id))))


def steps(user, project: Project, figures: Figures) -> list[Step]:
    """The steps of ``project`` for ``user``, in the order they are done."""
    cash = project.type == "cash"
    plan = [
        (
            "enrol",
            "Enrol people",
            "Import a list or register people one by one, then add them to this project.",
            _has(ProjectBeneficiary, project.id),
            "beneficiary.manage",
            url_for("imports.new"),
        )
    ]
    if not cash:
        plan.append(
            (
                "vendors",
                "Add vendors",
                "Register the shops where people spend, and assign them to this project.",
                _has(VendorProject, project.id),
                "vendor.manage",
                url_for("vendors.index"),
            )
        )
    plan.append(
        (
            "fund",
            "Fund the project",
            "Set up the project's account and put money into it; someone else approves.",
            figures.funded > 0,
            "chain.manage",
            url_for("chain.project_chain", project_id=project.id),
        )
    )
    if cash:
        sent = db.session.scalar(
            select(
                exists().where(
                    Disbursement.project_id == project.id, Disbursement.status == COMPLETED
                )
            )
        )
        plan.append(
            (
                "allocate",
                "Send cash",
                "Choose a group and an amount per person; someone else approves the start.",
                bool(sent),
                "disbursement.manage",
                url_for("disbursements.new", project_id=project.id),
            )
        )
    else:
        plan += [
            (
                "allocate",
                "Allocate",
                "Give each person of a group an amount they may spend; someone else approves.",
                figures.allocated > 0,
                "disbursement.manage",
                url_for("disbursements.new", project_id=project.id),
            ),
            (
                "distribute",
                "Distribute",
                "People spend at the vendors with a one-time code; follow it live.",
                figures.spent + figures.pending > 0,
                "dashboard.read",
                url_for("dashboard.live", project_id=project.id),
            ),
        ]
    roles = _roles_with({permission for *_, permission, _url in plan})
    return [
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


def unfinished(items: list[Step]) -> bool:
    return not all(step.done for step in items)

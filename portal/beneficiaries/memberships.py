"""The projects and groups of the people on one page of the list, in two queries for the page
(not two per row), limited to the projects the user may see."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select

from portal.beneficiaries.models import BeneficiaryGroup, GroupMember, ProjectBeneficiary
from portal.extensions import db
from portal.projects import services as projects
from portal.projects.models import Project


def of_people(user, people) -> tuple[dict[int, list[Project]], dict[int, list[BeneficiaryGroup]]]:
    """(projects by person id, groups by person id), each sorted by name."""
    ids = [p.id for p in people]
    in_projects: dict[int, list[Project]] = defaultdict(list)
    in_groups: dict[int, list[BeneficiaryGroup]] = defaultdict(list)
    if not ids:
        return in_projects, in_groups
    rows = db.session.execute(
        projects.scope(
            select(ProjectBeneficiary.beneficiary_id, Project)
            .join(Project, Project.id == ProjectBeneficiary.project_id)
            .where(ProjectBeneficiary.beneficiary_id.in_(ids)),
            Project.id,
            user,
        ).order_by(Project.name)
    )
    for person_id, project in rows:
        in_projects[person_id].append(project)
    rows = db.session.execute(
        projects.scope(
            select(GroupMember.beneficiary_id, BeneficiaryGroup)
            .join(BeneficiaryGroup, BeneficiaryGroup.id == GroupMember.group_id)
            .where(GroupMember.beneficiary_id.in_(ids)),
            BeneficiaryGroup.project_id,
            user,
        ).order_by(BeneficiaryGroup.name)
    )
    for person_id, group in rows:
        in_groups[person_id].append(group)
    return in_projects, in_groups

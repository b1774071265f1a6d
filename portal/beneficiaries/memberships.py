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
    in_projects = _by_person(
        user, ids, Project, ProjectBeneficiary, ProjectBeneficiary.project_id, Project.id
    )
    in_groups = _by_person(
        user, ids, BeneficiaryGroup, GroupMember, GroupMember.group_id, BeneficiaryGroup.project_id
    )
    return in_projects, in_groups


def _by_person(user, ids: list[int], model, link, link_column, project_column) -> dict:
    """The ``model`` rows linked to each person through ``link``, in projects the user sees."""
    found: dict[int, list] = defaultdict(list)
    if not ids:
        return found
    query = (
        select(link.beneficiary_id, model)
        .join(model, model.id == link_column)
        .where(link.beneficiary_id.in_(ids))
        .order_by(model.name)
    )
    for person_id, row in db.session.execute(projects.scope(query, project_column, user)):
        found[person_id].append(row)
    return found

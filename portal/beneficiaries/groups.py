"""Groups of beneficiaries inside a project, each with a purpose (a distribution, a cohort)."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import Select, delete, func, select

from portal import events
from portal.beneficiaries.models import Beneficiary, BeneficiaryGroup, GroupMember
from portal.beneficiaries.services import add_to_project
from portal.errors import Conflict, NotFound
from portal.extensions import db
from portal.projects import services as projects
from portal.projects.models import Project


def visible(user) -> Select:
    return projects.scope(select(BeneficiaryGroup), BeneficiaryGroup.project_id, user).order_by(
        BeneficiaryGroup.name
    )


def get_visible(user, group_id: int) -> BeneficiaryGroup:
    group = db.session.scalar(visible(user).where(BeneficiaryGroup.id == group_id))
    if group is None:
        raise NotFound(_("No such group."))
    return group


def member_counts(group_ids: list[int]) -> dict[int, int]:
    rows = db.session.execute(
        select(GroupMember.group_id, func.count())
        .where(GroupMember.group_id.in_(group_ids))
        .group_by(GroupMember.group_id)
    )
    return dict(rows.all())


def create(project: Project, name: str, purpose: str) -> BeneficiaryGroup:
    projects.ensure_writable(project)
    name = name.strip()
    taken = db.session.scalar(
        select(BeneficiaryGroup.id).where(
            BeneficiaryGroup.project_id == project.id, BeneficiaryGroup.name == name
        )
    )
    if taken:
        raise Conflict(_("This project already has a group with that name."))
    group = BeneficiaryGroup(project_id=project.id, name=name, purpose=purpose.strip())
    db.session.add(group)
    db.session.flush()
    events.group_changed.send(
        group,
        action="group.created",
        summary=f"Group {group.id} created in project {project.id}",
        project_id=project.id,
    )
    return group


def add_members(group: BeneficiaryGroup, people: list[Beneficiary]) -> int:
    """Add people to the group (and so to its project); returns how many were new."""
    project = db.session.get(Project, group.project_id)
    projects.ensure_writable(project)
    have = set(
        db.session.scalars(
            select(GroupMember.beneficiary_id).where(GroupMember.group_id == group.id)
        )
    )
    added = 0
    for person in people:
        if person.id in have:
            continue
        add_to_project(person, project)
        db.session.add(GroupMember(group_id=group.id, beneficiary_id=person.id))
        have.add(person.id)
        added += 1
    db.session.flush()
    if added:
        events.group_changed.send(
            group,
            action="group.members_added",
            summary=f"{added} beneficiaries added to group {group.id}",
            project_id=project.id,
        )
    return added


def remove_member(group: BeneficiaryGroup, person: Beneficiary) -> bool:
    projects.ensure_writable(db.session.get(Project, group.project_id))
    result = db.session.execute(
        delete(GroupMember).where(
            GroupMember.group_id == group.id, GroupMember.beneficiary_id == person.id
        )
    )
    db.session.flush()
    if result.rowcount:
        events.group_changed.send(
            group,
            action="group.member_removed",
            summary=f"Beneficiary {person.ref} removed from group {group.id}",
            project_id=group.project_id,
        )
    return bool(result.rowcount)


def groups_of(person: Beneficiary) -> list[BeneficiaryGroup]:
    return list(
        db.session.scalars(
            select(BeneficiaryGroup)
            .join(GroupMember, GroupMember.group_id == BeneficiaryGroup.id)
            .where(GroupMember.beneficiary_id == person.id)
            .order_by(BeneficiaryGroup.name)
        )
    )

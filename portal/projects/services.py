"""Project rules: who sees which project, the status lifecycle, and the closed-is-read-only rule."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError

from portal import dateranges, events
from portal.accounts import safeguards
from portal.errors import Conflict, InvalidTransition, NotFound, ProjectClosed, ValidationFailed
from portal.extensions import db
from portal.projects.models import TRANSITIONS, TYPES, Project, ProjectMember
from portal.transitions import move

EDITABLE = ("name", "type", "description", "location", "currency", "start_date", "end_date")


def member_project_ids(user) -> set[int]:
    return set(
        db.session.scalars(select(ProjectMember.project_id).where(ProjectMember.user_id == user.id))
    )


def visible_project_ids(user) -> set[int] | None:
    """None means every project (the user holds ``project.all``)."""
    return None if user.sees_all_projects else member_project_ids(user)


def scope(query: Select, column, user) -> Select:
    """Limit a query to rows whose project ``column`` the user may see."""
    ids = visible_project_ids(user)
    return query if ids is None else query.where(column.in_(ids))


def visible_projects(user) -> Select:
    return scope(select(Project), Project.id, user).order_by(Project.name)


def open_projects(user) -> list[Project]:
    """Visible projects that can still change, for pickers."""
    return [p for p in db.session.scalars(visible_projects(user)) if not p.is_closed]


def get_visible(user, project_id: int) -> Project:
    project = db.session.get(Project, project_id)
    if project is None:
        raise NotFound(_("No such project."))
    ids = visible_project_ids(user)
    if ids is not None and project.id not in ids:
        # The same answer as for a missing project: do not reveal that it exists.
        raise NotFound(_("No such project."))
    return project


def ensure_writable(project: Project) -> None:
    if project.is_closed:
        raise ProjectClosed(f"Project “{project.name}”")


def _check_dates(data: dict, project: Project | None = None) -> None:
    """Dates given (or changed) within the project range; the end not before the start."""
    problems = {}
    for key in ("start_date", "end_date"):
        value = data.get(key)
        if value is None or (project is not None and getattr(project, key) == value):
            continue
        if problem := dateranges.PROJECT.problem(value):
            problems[key] = problem
    start = data.get("start_date", project.start_date if project else None)
    end = data.get("end_date", project.end_date if project else None)
    if not problems and start and end and end < start:
        problems["end_date"] = _("The end comes before the start.")
    if problems:
        raise ValidationFailed(problems)


def _check_name_free(name: str | None, project: Project | None = None) -> None:
    if not name:
        return
    taken = db.session.scalar(
        select(Project.id).where(
            func.lower(Project.name) == name.lower(), Project.id != (project.id if project else -1)
        )
    )
    if taken is not None:
        raise ValidationFailed(
            {"name": _("Another project already has this name; choose another.")}
        )


def _flush_named(project: Project) -> None:
    """Flush; a name another project holds (the unique constraint decides) is a Conflict.

    The caller rolls back, as after any DomainError.
    """
    name = project.name  # read now: after a failed flush the session must roll back first
    try:
        db.session.flush()
    except IntegrityError:
        raise Conflict(
            _("A project named “%(name)s” exists already; choose another name.", name=name)
        ) from None


def create(data: dict, creator) -> Project:
    if data.get("type") not in TYPES:
        raise InvalidTransition(_("Unknown project type."))
    _check_dates(data)
    _check_name_free(data.get("name"))
    project = Project(**{k: data.get(k) for k in EDITABLE if k in data})
    db.session.add(project)
    _flush_named(project)
    db.session.add(ProjectMember(project_id=project.id, user_id=creator.id))
    db.session.flush()
    events.project_changed.send(
        project,
        action="project.created",
        summary=f"Project {project.id} created",
        project_id=project.id,
        data={"type": project.type},
    )
    return project


def update(project: Project, data: dict) -> Project:
    ensure_writable(project)
    _check_dates(data, project)
    _check_name_free(data.get("name"), project)
    changed = sorted(k for k in EDITABLE if k in data and getattr(project, k) != data[k])
    for key in changed:
        setattr(project, key, data[key])
    _flush_named(project)
    if changed:
        events.project_changed.send(
            project,
            action="project.updated",
            summary=f"Project {project.id} edited",
            project_id=project.id,
            data={"fields": changed},
        )
    return project


def change_status(project: Project, new_status: str) -> Project:
    old = project.status
    if new_status not in TRANSITIONS.get(old, ()):
        raise InvalidTransition(f"A {old} project cannot become {new_status}.")
    move(
        project,
        (old,),
        new_status,
        lambda found: f"This project is {found} now, not {old}; reload and decide again.",
    )
    events.project_status_changed.send(
        project,
        action="project.status",
        summary=f"Project {project.id}: {old} → {new_status}",
        project_id=project.id,
        data={"from": old, "to": new_status},
    )
    return project


def set_members(project: Project, user_ids: set[int], *, actor=None) -> None:
    """``actor`` (None: the system) may not remove themselves from a project they only see as
    a member; nobody may leave a project without members."""
    ensure_writable(project)
    current = {m.user_id: m for m in project.members}
    safeguards.check_members_change(actor, user_ids, set(current))
    added, removed = user_ids - set(current), set(current) - user_ids
    for uid in removed:
        project.members.remove(current[uid])
    for uid in added:
        project.members.append(ProjectMember(user_id=uid))
    db.session.flush()
    if added or removed:
        events.project_members_changed.send(
            project,
            action="project.members",
            summary=f"Project {project.id} members changed",
            project_id=project.id,
            data={"added": sorted(added), "removed": sorted(removed)},
        )

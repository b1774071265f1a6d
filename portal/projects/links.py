"""Membership of things (beneficiaries, vendors) in projects: one link row per pair.

The owning feature sends its own domain event; this module only keeps the rows and the rule
that a closed project's links do not change.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from portal.extensions import db
from portal.projects.models import Project
from portal.projects.services import ensure_writable


def project_ids(link_model, owner_column, owner_id: int) -> list[int]:
    return list(db.session.scalars(select(link_model.project_id).where(owner_column == owner_id)))


def add(link_model, owner_column, owner_id: int, project: Project) -> bool:
    """Link the owner to the project; False if it already was."""
    ensure_writable(project)
    if project.id in project_ids(link_model, owner_column, owner_id):
        return False
    db.session.add(link_model(project_id=project.id, **{owner_column.key: owner_id}))
    db.session.flush()
    return True


def remove(link_model, owner_column, owner_id: int, project: Project) -> bool:
    """Unlink the owner from the project; False if it was not linked."""
    ensure_writable(project)
    result = db.session.execute(
        delete(link_model).where(owner_column == owner_id, link_model.project_id == project.id)
    )
    db.session.flush()
    return bool(result.rowcount)

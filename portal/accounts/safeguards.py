"""Checks before a change to roles, users or project members: nobody escalates, nothing orphans.

An empty Roles form once stripped the admin role of every permission, and an empty Members form
removed everyone from a project. Each change is checked on the state it would leave:

- nobody grants what they do not hold: a holder of ``role.manage`` gives a role (their own
  included) only permissions they hold, and a holder of ``user.manage`` gives a user only a role
  whose permissions they hold;
- somebody can still administer: an active user keeps ``role.manage``, one keeps ``user.manage``,
  and no permission that an active role manager could grant becomes one nobody can grant (with
  the rule above it could never be granted again);
- the acting user keeps the page they are on.

A refused change raises ``Refused`` naming the form field, and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flask_babel import gettext as _
from sqlalchemy import select

from portal.accounts.models import Role, User
from portal.accounts.permissions import ALL_PROJECTS
from portal.errors import DomainError
from portal.extensions import db

ROLE_MANAGE = "role.manage"
USER_MANAGE = "user.manage"


class Refused(DomainError):
    status = 400

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def _names(permissions: Iterable[str]) -> str:
    return ", ".join(sorted(permissions))


def _active_users() -> list[User]:
    return list(db.session.scalars(select(User).where(User.active.is_(True))))


def _administration_left(
    role_permissions: Mapping[int, set[str]], user_roles: Mapping[int, int | None]
) -> tuple[set[str], bool, bool]:
    """What the active users could still do: (grantable permissions, any role manager, any user
    manager), given each role's permissions and each active user's role (None: inactive)."""
    grantable: set[str] = set()
    role_manager = user_manager = False
    for role_id in user_roles.values():
        if role_id is None:
            continue
        held = role_permissions.get(role_id, set())
        if ROLE_MANAGE in held:
            role_manager = True
            grantable |= held
        user_manager = user_manager or USER_MANAGE in held
    return grantable, role_manager, user_manager


def _check_administration(
    *,
    role_changes: Mapping[int, set[str]] | None = None,
    user_changes: Mapping[int, int | None] | None = None,
    field: str,
) -> None:
    roles = {r.id: r.permissions for r in db.session.scalars(select(Role))}
    users = {u.id: u.role_id for u in _active_users()}
    before = _administration_left(roles, users)
    after = _administration_left(
        {**roles, **(role_changes or {})}, {**users, **(user_changes or {})}
    )
    if before[1] and not after[1]:
        raise Refused(
            _(
                "After this change no active user could manage roles. "
                "Keep %(permission)s on a role that an active user has.",
                permission=ROLE_MANAGE,
            ),
            field,
        )
    if before[2] and not after[2]:
        raise Refused(
            _(
                "After this change no active user could manage users. "
                "Keep %(permission)s on a role that an active user has.",
                permission=USER_MANAGE,
            ),
            field,
        )
    lost = before[0] - after[0]
    if lost:
        raise Refused(
            _(
                "After this change nobody who manages roles would hold %(lost)s, so it could "
                "never be granted again. Keep it on a role with %(permission)s that an active "
                "user has.",
                lost=_names(lost),
                permission=ROLE_MANAGE,
            ),
            field,
        )


def check_role_change(actor: User, role: Role | None, permissions: set[str]) -> None:
    """Before ``role`` (None: a new one) gets exactly ``permissions``."""
    before = set() if role is None else role.permissions
    beyond = (permissions - before) - actor.role.permissions
    if beyond:
        raise Refused(
            _(
                "You can grant only permissions you hold yourself; you do not hold %(beyond)s.",
                beyond=_names(beyond),
            ),
            "permissions",
        )
    if role is None:
        return
    if role.id == actor.role_id and ROLE_MANAGE not in permissions:
        raise Refused(
            _(
                "This is your own role: without %(permission)s you would lose this page. "
                "Ask another administrator to change it.",
                permission=ROLE_MANAGE,
            ),
            "permissions",
        )
    check_administration_after_role_change(role, permissions)


def check_administration_after_role_change(role: Role, permissions: set[str]) -> None:
    _check_administration(role_changes={role.id: permissions}, field="permissions")


def check_administration_after_user_change(user: User, role: Role, active: bool) -> None:
    _check_administration(
        user_changes={user.id: role.id if active else None},
        field="role_id" if user.role_id != role.id else "active",
    )


def check_role_assignment(actor: User, user: User | None, role: Role, active: bool) -> None:
    """Before ``user`` (None: a new one) gets ``role`` and the ``active`` flag."""
    changes_role = user is None or user.role_id != role.id
    if changes_role:
        beyond = role.permissions - actor.role.permissions
        if beyond:
            raise Refused(
                _(
                    "You can give only roles whose permissions you hold yourself; "
                    "the role %(role)s has %(beyond)s.",
                    role=role.name,
                    beyond=_names(beyond),
                ),
                "role_id",
            )
    if user is None:
        return
    if user.id == actor.id:
        if not active:
            raise Refused(_("You cannot deactivate your own account."), "active")
        if USER_MANAGE not in role.permissions:
            raise Refused(
                _(
                    "The role %(role)s has no %(permission)s: you would lose this page. "
                    "Ask another administrator to change your role.",
                    role=role.name,
                    permission=USER_MANAGE,
                ),
                "role_id",
            )
    check_administration_after_user_change(user, role, active)


def check_members_change(actor: User | None, member_ids: set[int], current_ids: set[int]) -> None:
    """Before a project's members become ``member_ids`` (now ``current_ids``); ``actor`` None:
    the system."""
    if not member_ids:
        raise Refused(
            _("A project needs at least one member. Tick the people who work on it."), "members"
        )
    if actor is None:
        return
    if actor.id in current_ids and actor.id not in member_ids and not actor.can(ALL_PROJECTS):
        raise Refused(
            _(
                "You would remove yourself and lose access to this project. "
                "Ask someone who sees every project to do it."
            ),
            "members",
        )

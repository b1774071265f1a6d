"""Sockets follow the user's access: when it shrinks, the user's sockets are closed.

A socket's rooms were chosen when it subscribed, under the permissions of that moment. When a
user leaves a project, changes role or a role loses permissions, the user's sockets are closed
on every web process (after the change commits); the browser connects again and each topic
checks what the user may see now.
"""

from __future__ import annotations

from sqlalchemy import select

from portal import events, realtime
from portal.accounts.models import User
from portal.extensions import db


def _members_changed(project, *, data=None, **_) -> None:
    for user_id in (data or {}).get("removed", ()):
        realtime.evict_after_commit(realtime.user_room(user_id), ended=False)


def _user_changed(user, *, action: str = "", **_) -> None:
    if action != "user.created":
        realtime.evict_after_commit(realtime.user_room(user.id), ended=False)


def _role_changed(role, *, data=None, **_) -> None:
    if not (data or {}).get("revoked"):
        return  # a grant takes nothing away: open sockets may stay
    for user_id in db.session.scalars(select(User.id).where(User.role_id == role.id)):
        realtime.evict_after_commit(realtime.user_room(user_id), ended=False)


def connect() -> None:
    events.project_members_changed.connect(_members_changed, weak=False)
    events.user_changed.connect(_user_changed, weak=False)
    events.role_changed.connect(_role_changed, weak=False)

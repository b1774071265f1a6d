"""Staff accounts: creating users, signing in with lockout, and editing roles at runtime."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from portal import events
from portal.accounts.models import Role, User
from portal.accounts.permissions import PERMISSIONS, SEEDED_ROLES
from portal.errors import Conflict, DomainError, NotFound
from portal.extensions import db
from portal.timeutil import utcnow

MIN_PASSWORD = 12
# Checked against when the email is unknown, so a miss costs as long as a hit.
_DUMMY_HASH = generate_password_hash("not-a-real-password-0000")


# One answer for every failure, so the form does not tell which emails have (locked) accounts.
GENERIC_FAILURE = (
    "Wrong email or password. After several failed tries an account is locked for a while."
)


class SignInFailed(DomainError):
    status = 401


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise DomainError(f"A password needs at least {MIN_PASSWORD} characters.")
    return generate_password_hash(password, method="scrypt")


def seed_roles() -> dict[str, Role]:
    """Create the standard roles if missing; never touches a role an admin has changed."""
    roles = {r.name: r for r in db.session.scalars(select(Role))}
    for name, (description, perms) in SEEDED_ROLES.items():
        if name not in roles:
            role = Role(name=name, description=description)
            role.set_permissions(set(perms))
            db.session.add(role)
            roles[name] = role
    db.session.flush()
    return roles


def role_by_name(name: str) -> Role:
    role = db.session.scalar(select(Role).where(func.lower(Role.name) == name.lower()))
    if role is None:
        raise NotFound(f"No role named {name}.")
    return role


def create_user(email: str, name: str, password: str, role: Role) -> User:
    email = email.strip().lower()
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("A user with this email exists.")
    user = User(email=email, name=name.strip(), password_hash=hash_password(password), role=role)
    db.session.add(user)
    db.session.flush()
    events.user_changed.send(
        user,
        action="user.created",
        summary=f"User {user.id} created with role {role.name}",
    )
    return user


def authenticate(email: str, password: str) -> User:
    """Return the user, or raise SignInFailed; counts failures and locks the account."""
    cfg = current_app.config
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    now = utcnow()
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        raise SignInFailed(GENERIC_FAILURE)
    if user.locked_until and user.locked_until > now:
        raise SignInFailed(GENERIC_FAILURE)
    if not check_password_hash(user.password_hash, password) or not user.active:
        user.failed_logins += 1
        locked = user.failed_logins >= cfg["LOCKOUT_THRESHOLD"]
        if locked:
            user.locked_until = now + timedelta(minutes=cfg["LOCKOUT_MINUTES"])
            user.failed_logins = 0
        events.user_sign_in_failed.send(
            user,
            action="auth.failed",
            summary=f"Failed sign-in for user {user.id}" + (" (account locked)" if locked else ""),
        )
        raise SignInFailed(GENERIC_FAILURE)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    return user


def save_role(role: Role | None, name: str, description: str, permissions: set[str]) -> Role:
    unknown = permissions - set(PERMISSIONS)
    if unknown:
        raise DomainError(f"Unknown permissions: {', '.join(sorted(unknown))}.")
    name = name.strip()
    clash = db.session.scalar(select(Role.id).where(func.lower(Role.name) == name.lower()))
    if clash and (role is None or clash != role.id):
        raise Conflict("A role with this name exists.")
    created = role is None
    before = set() if created else role.permissions
    if created:
        role = Role(name=name)
        db.session.add(role)
    role.name, role.description = name, description.strip()
    role.set_permissions(permissions)
    db.session.flush()
    events.role_changed.send(
        role,
        action="role.created" if created else "role.updated",
        summary=f"Role {role.name} {'created' if created else 'changed'}",
        data={"granted": sorted(permissions - before), "revoked": sorted(before - permissions)},
    )
    return role


def set_user_role(user: User, role: Role, active: bool) -> None:
    changes = {}
    if user.role_id != role.id:
        changes["role"] = [user.role.name, role.name]
        user.role = role
    if user.active != active:
        changes["active"] = [user.active, active]
        user.active = active
    db.session.flush()
    if changes:
        events.user_changed.send(
            user,
            action="user.updated",
            summary=f"User {user.id} role or status changed",
            data=changes,
        )

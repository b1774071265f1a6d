"""Staff accounts: creating users, signing in, changing passwords, and editing roles at runtime."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal import events
from portal.accounts import notices, passwords, safeguards, sessions
from portal.accounts.models import Role, User
from portal.accounts.permissions import PERMISSIONS, SEEDED_ROLES
from portal.errors import Conflict, DomainError, NotFound
from portal.extensions import db
from portal.timeutil import utcnow

MIN_PASSWORD = passwords.MIN_LENGTH

# One answer for every failure (unknown email, wrong password, inactive account), so the form
# does not tell which emails have accounts.
GENERIC_FAILURE = _l("Wrong email or password.")


class SignInFailed(DomainError):
    status = 401


def hash_password(password: str, *, user_inputs: tuple[str, ...] = ()) -> str:
    return passwords.hash_password(password, user_inputs=user_inputs)


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
        raise NotFound(_("No role named %(name)s.", name=name))
    return role


def create_user(
    email: str, name: str, password: str, role: Role, *, actor: User | None = None
) -> User:
    """A new staff user. ``actor``: the staff member adding them (None: the command line)."""
    email = email.strip().lower()
    if actor is not None:
        safeguards.check_role_assignment(actor, None, role, True)
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise Conflict(_("A user with this email exists."))
    name = name.strip()
    user = User(
        email=email,
        name=name,
        password_hash=hash_password(password, user_inputs=(email, name)),
        role=role,
    )
    db.session.add(user)
    db.session.flush()
    events.user_changed.send(
        user,
        action="user.created",
        summary=f"User {user.id} created with role {role.name}",
    )
    return user


def authenticate(email: str, password: str) -> User:
    """Return the user, or raise SignInFailed.

    Every outcome does the same work: one check of the KDF (against a dummy hash of the same
    parameters when the email is unknown) and one audit entry for a failure, so neither the
    answer nor its timing tells an unknown email from a wrong password or an inactive account.
    Throttling is the caller's (``throttle``), before this is called.
    """
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    stored = user.password_hash if user is not None else passwords.dummy_hash()
    matches = passwords.verify(stored, password)
    if user is None or not matches or not user.active:
        if user is None:
            sender, summary = "unknown", "Failed sign-in for an email with no account"
        else:
            sender, summary = user, f"Failed sign-in for user {user.id}"
        events.user_sign_in_failed.send(sender, action="auth.failed", summary=summary)
        raise SignInFailed(str(GENERIC_FAILURE))
    user.last_login_at = utcnow()
    return user


def change_password(user: User, current: str, new: str, *, keep_session: int | None) -> list[int]:
    """Set a new password; ends every other session of the user and returns their ids. The
    user is told by email.

    Raises WrongPassword when ``current`` is not the password, WeakPassword when ``new`` fails
    the policy; nothing changes then.
    """
    if not passwords.verify(user.password_hash, current):
        raise WrongPassword(_("This is not your current password."))
    user.password_hash = hash_password(new, user_inputs=(user.email, user.name))
    ended = sessions.revoke_all(user.id, keep=keep_session)
    db.session.flush()
    notices.password_changed(user, "changed")
    events.user_changed.send(
        user,
        action="user.password_changed",
        summary=f"User {user.id} changed their password; {len(ended)} other sessions ended",
    )
    return ended


class WrongPassword(DomainError):
    status = 400


def save_role(
    role: Role | None,
    name: str,
    description: str,
    permissions: set[str],
    *,
    actor: User | None = None,
) -> Role:
    """Create or change a role. ``actor`` may grant only what they hold (None: the system)."""
    unknown = permissions - set(PERMISSIONS)
    if unknown:
        raise DomainError(_("Unknown permissions: %(names)s.", names=", ".join(sorted(unknown))))
    if actor is not None:
        safeguards.check_role_change(actor, role, permissions)
    elif role is not None:
        safeguards.check_administration_after_role_change(role, permissions)
    name = name.strip()
    clash = db.session.scalar(select(Role.id).where(func.lower(Role.name) == name.lower()))
    if clash and (role is None or clash != role.id):
        raise Conflict(_("A role with this name exists."))
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


def set_user_role(user: User, role: Role, active: bool, *, actor: User | None = None) -> None:
    if active and user.closed_at is not None:
        raise safeguards.Refused(_("A closed account cannot be reactivated."), "active")
    if actor is not None:
        safeguards.check_role_assignment(actor, user, role, active)
    else:
        safeguards.check_administration_after_user_change(user, role, active)
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

"""Invitations: staff are invited by email with a role and projects, and choose their password.

The admin never sees or types the newcomer's password. The invitation's link works once and
until it expires; resending makes a new link (the old one stops working), revoking ends it.
Accepting creates the account, adds it to the projects and signs the person in.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import events
from portal.accounts import links, safeguards, services
from portal.accounts.links import INVITATION, AccountLink
from portal.accounts.models import Role, User
from portal.comms import mail
from portal.errors import Conflict, DomainError
from portal.extensions import db
from portal.i18n.locales import DEFAULT
from portal.projects import services as projects
from portal.projects.models import Project
from portal.timeutil import utcnow


def _ttl() -> timedelta:
    return timedelta(hours=current_app.config["INVITATION_TTL_HOURS"])


def _email(invitation: AccountLink, token: str, by: User | None) -> None:
    role = db.session.get(Role, invitation.role_id)
    mail.send_email(
        invitation.email,
        _l("You are invited to the aid distribution portal"),
        "invitation",
        "accounts.invitation",
        expires_at=invitation.expires_at,
        link=links.url(token),
        role=role.name if role else "",
        inviter=by.name if by else None,
        until=invitation.expires_at,  # ``expires_at`` above is the outbox's, not the text's
        # The invitee has no language yet: the email is in the inviter's (the page's).
        locale=str(get_locale() or DEFAULT),
    )


def invite(
    email: str, role: Role, project_ids: set[int], *, actor: User | None
) -> tuple[AccountLink, str]:
    """Invite ``email`` and send the link; returns the invitation and its token.

    ``actor`` (None: the command line) may give only a role they could assign and projects
    they see.
    """
    email = email.strip().lower()
    if actor is not None:
        safeguards.check_role_assignment(actor, None, role, True)
        visible = projects.visible_project_ids(actor)
        if visible is not None and not project_ids <= visible:
            raise DomainError(_("You can only invite to projects you are a member of."))
    if db.session.scalar(select(User.id).where(User.email == email)):
        raise Conflict(_("A user with this email exists."))
    if pending(email=email):
        raise Conflict(_("This email has a pending invitation: resend or revoke it."))
    for project_id in project_ids:
        project = db.session.get(Project, project_id)
        if project is None:
            raise DomainError(_("One of the projects no longer exists."))
        projects.ensure_writable(project)
    invitation, token = links.issue(
        INVITATION,
        email,
        _ttl(),
        role_id=role.id,
        project_ids=",".join(str(p) for p in sorted(project_ids)),
        created_by_id=actor.id if actor else None,
    )
    _email(invitation, token, actor)
    events.account_link_changed.send(
        invitation,
        action="invitation.sent",
        summary=f"Invitation {invitation.id} sent with role {role.name}",
        data={"invitation": invitation.id, "projects": invitation.projects},
    )
    return invitation, token


def pending(email: str | None = None) -> list[AccountLink]:
    """Invitations neither accepted nor revoked (expired ones too: they can be resent)."""
    query = select(AccountLink).where(
        AccountLink.purpose == INVITATION,
        AccountLink.used_at.is_(None),
        AccountLink.revoked_at.is_(None),
    )
    if email is not None:
        query = query.where(AccountLink.email == email)
    return list(db.session.scalars(query.order_by(AccountLink.created_at.desc())))


def _pending_one(invitation_id: int) -> AccountLink:
    invitation = db.session.get(AccountLink, invitation_id)
    if invitation is None or invitation.purpose != INVITATION:
        raise DomainError(_("No such invitation."))
    if invitation.used_at is not None or invitation.revoked_at is not None:
        raise Conflict(_("This invitation was already accepted or revoked."))
    return invitation


def resend(invitation_id: int, *, actor: User) -> AccountLink:
    invitation = _pending_one(invitation_id)
    token = links.renew(invitation, _ttl())
    _email(invitation, token, actor)
    events.account_link_changed.send(
        invitation,
        action="invitation.resent",
        summary=f"Invitation {invitation.id} sent again",
        data={"invitation": invitation.id},
    )
    return invitation


def revoke(invitation_id: int, *, actor: User) -> AccountLink:
    invitation = _pending_one(invitation_id)
    invitation.revoked_at = utcnow()
    db.session.flush()
    events.account_link_changed.send(
        invitation,
        action="invitation.revoked",
        summary=f"Invitation {invitation.id} revoked",
        data={"invitation": invitation.id},
    )
    return invitation


def accept(invitation: AccountLink, name: str, password: str) -> User:
    """Create the invitee's account; raises WeakPassword (nothing changes) or Conflict."""
    role = db.session.get(Role, invitation.role_id)
    if role is None:
        raise Conflict(_("The role of this invitation no longer exists. Ask for a new one."))
    # The password is checked (and hashed) before the link is taken: a refused password
    # leaves the link usable for the next try.
    user = services.create_user(invitation.email, name, password, role)
    if not links.take(invitation):
        raise Conflict(_("This invitation was already used."))
    invitation.user_id = user.id
    for project_id in invitation.projects:
        project = db.session.get(Project, project_id)
        if project is None or project.is_closed:
            continue  # closed or gone since the invitation: nothing to join
        members = {m.user_id for m in project.members}
        projects.set_members(project, members | {user.id})
    events.account_link_changed.send(
        invitation,
        action="invitation.accepted",
        summary=f"Invitation {invitation.id} accepted by user {user.id}",
        data={"invitation": invitation.id},
    )
    return user

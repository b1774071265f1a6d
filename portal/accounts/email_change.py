"""Changing a staff member's email: confirmed from the new address, undoable from the old one.

The new address gets a link; until it is followed nothing changes. Once it is, the old address
gets a notice with an undo link: if someone else made the change, the owner takes the address
back from their own inbox, every session of the account ends and a password reset link follows.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from portal import events
from portal.accounts import links, passwords, recovery, sessions
from portal.accounts.links import EMAIL_CHANGE, EMAIL_UNDO, AccountLink
from portal.accounts.models import User
from portal.accounts.services import WrongPassword
from portal.comms import mail
from portal.errors import Conflict
from portal.extensions import db
from portal.i18n import locales


def _taken(email: str, user: User) -> bool:
    return bool(db.session.scalar(select(User.id).where(User.email == email, User.id != user.id)))


def request_change(user: User, new_email: str, password: str) -> AccountLink:
    """Send a confirmation link to ``new_email``. Raises WrongPassword or Conflict."""
    if not passwords.verify(user.password_hash, password):
        raise WrongPassword(_("This is not your current password."))
    new_email = new_email.strip().lower()
    if new_email == user.email:
        raise Conflict(_("This is already your email."))
    if _taken(new_email, user):
        raise Conflict(_("Another account uses this email."))
    links.revoke_open(EMAIL_CHANGE, user_id=user.id)
    ttl = timedelta(hours=current_app.config["EMAIL_CHANGE_TTL_HOURS"])
    link, token = links.issue(EMAIL_CHANGE, new_email, ttl, user_id=user.id)
    mail.send_email(
        new_email,
        _l("Confirm your new portal email"),
        "email_change",
        "accounts.email_change",
        expires_at=link.expires_at,
        name=user.name,
        link=links.url(token),
        hours=current_app.config["EMAIL_CHANGE_TTL_HOURS"],
        locale=locales.of_user(user),
    )
    events.account_link_changed.send(
        link,
        action="email_change.requested",
        summary=f"User {user.id} asked to change their email",
        data={"user": user.id},
    )
    return link


def _take(link: AccountLink) -> User:
    """Use the link up and return its account, whose email becomes the link's address; raises
    Conflict when that address is another account's now or the link was used meanwhile."""
    user = db.session.get(User, link.user_id)
    if user is None:
        raise Conflict(_("This link no longer works."))
    if _taken(link.email, user):
        raise Conflict(
            _("Another account uses %(email)s now. Ask an administrator.", email=link.email)
        )
    if not links.take(link):
        raise Conflict(_("This link was already used."))
    return user


def confirm(link: AccountLink) -> User:
    """Make the link's address the account's; the old address gets an undo link."""
    user = _take(link)
    old = user.email
    user.email = link.email
    db.session.flush()
    ttl = timedelta(days=current_app.config["EMAIL_UNDO_TTL_DAYS"])
    undo, token = links.issue(EMAIL_UNDO, old, ttl, user_id=user.id)
    mail.send_email(
        old,
        _l("Your portal email was changed"),
        "email_changed",
        "accounts.email_changed",
        expires_at=undo.expires_at,
        name=user.name,
        new_email=user.email,
        link=links.url(token),
        days=current_app.config["EMAIL_UNDO_TTL_DAYS"],
        locale=locales.of_user(user),
    )
    events.user_changed.send(
        user, action="user.email_changed", summary=f"User {user.id} changed their email"
    )
    return user


def undo(link: AccountLink) -> User:
    """Give the account its old address back, end its sessions and email a reset link there."""
    user = _take(link)
    user.email = link.email
    links.revoke_open(EMAIL_CHANGE, user_id=user.id)
    ended = sessions.revoke_all(user.id)
    db.session.flush()
    events.user_changed.send(
        user,
        action="user.email_change_undone",
        summary=f"User {user.id} took their old email back; {len(ended)} sessions ended",
    )
    if user.active:
        recovery.issue(user, send=True)
    return user

"""Forgot password: a single-use, expiring link by email, the same answer for every address.

The request does the same work whatever the address: it counts the attempt and queues a job
with the address encrypted. Only the job looks the address up and, when it belongs to an active
account, emails a link. So neither the page nor the time it takes says whether an account
exists. Requests are limited per typed address (past it: the same answer, no email, so nobody's
inbox can be flooded) and per client address (429).

A new password from a link ends every session of the account and is notified by email.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from limits import parse
from sqlalchemy import select

from portal import crypto, events
from portal.accounts import links, notices, passwords, sessions
from portal.accounts.links import PASSWORD_RESET, AccountLink
from portal.accounts.models import User
from portal.accounts.throttle import normalise_email
from portal.comms import mail
from portal.errors import Conflict
from portal.extensions import db, limiter
from portal.i18n import locales
from portal.jobs import dispatch
from portal.jobs.kinds import ACCOUNTS_PASSWORD_RESET

_EMAIL_SCOPE = "password-reset-email"


def _email_key(email: str) -> str:
    digest = hmac.new(
        crypto.derived_key("index"),
        b"password reset\x00" + normalise_email(email).encode(),
        hashlib.sha256,
    )
    return digest.hexdigest()[:32]


def request_reset(email: str) -> bool:
    """Count the request and queue the lookup; False when the address's limit is passed (the
    caller answers the same either way)."""
    email = normalise_email(email)
    if current_app.config.get("RATELIMIT_ENABLED", True):
        item = parse(current_app.config["PASSWORD_RESET_EMAIL_LIMIT"])
        if not limiter.limiter.hit(item, _EMAIL_SCOPE, _email_key(email)):
            return False
    dispatch.enqueue(ACCOUNTS_PASSWORD_RESET.name, {"email": crypto.encrypt(email)})
    return True


def handle_request(sealed_email: str) -> None:
    """The ``accounts.password_reset`` job: email a link if the address has an active account."""
    email = crypto.decrypt(sealed_email)
    user = db.session.scalar(select(User).where(User.email == email))
    if user is not None and user.active:
        issue(user, send=True)


def issue(user: User, *, send: bool, by: User | None = None) -> str:
    """A new reset link for ``user`` (earlier ones stop working); emailed when ``send``.
    Returns the link's URL (the operator command prints it)."""
    links.revoke_open(PASSWORD_RESET, user_id=user.id)
    ttl = timedelta(minutes=current_app.config["PASSWORD_RESET_TTL_MINUTES"])
    link, token = links.issue(
        PASSWORD_RESET, user.email, ttl, user_id=user.id, created_by_id=by.id if by else None
    )
    url = links.url(token)
    if send:
        mail.send_email(
            user.email,
            _l("Reset your portal password"),
            "password_reset",
            "accounts.password_reset",
            expires_at=link.expires_at,
            name=user.name,
            link=url,
            by_admin=by is not None,
            minutes=current_app.config["PASSWORD_RESET_TTL_MINUTES"],
            locale=locales.of_user(user),
        )
    if by is not None:
        how = f"sent by user {by.id}"
    else:
        how = "emailed on request" if send else "printed for an operator"
    events.account_link_changed.send(
        link,
        action="password_reset.issued",
        summary=f"Password reset link {link.id} for user {user.id} {how}",
        data={"user": user.id, "emailed": send},
    )
    return url


def reset(link: AccountLink, new_password: str) -> User:
    """Set the password from a reset link. Raises WeakPassword (the link stays usable) or
    Conflict (used meanwhile). Ends every session of the user and notifies them."""
    user = db.session.get(User, link.user_id)
    if user is None or not user.active:
        raise Conflict(_("This link no longer works. Ask for a new one."))
    password_hash = passwords.hash_password(new_password, user_inputs=(user.email, user.name))
    if not links.take(link):
        raise Conflict(_("This link was already used. Ask for a new one."))
    user.password_hash = password_hash
    links.revoke_open(PASSWORD_RESET, user_id=user.id)
    ended = sessions.revoke_all(user.id)
    db.session.flush()
    notices.password_changed(user, "reset")
    events.user_changed.send(
        user,
        action="user.password_reset",
        summary=f"User {user.id} set a new password from a reset link; {len(ended)} sessions ended",
    )
    return user

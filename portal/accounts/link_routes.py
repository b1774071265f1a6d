"""The pages emailed links lead to, forgot password, and the change of one's own email.

Every emailed link is ``/t/<token>``: that view keeps the token in the (signed) session cookie
and redirects to the page of the link's purpose, so the token is in no other URL, no page's
Referer and no browser history entry, and the request log hides it (portal/serving.py). The
pages take the token back from the session; following a link does not use it up, submitting
the page's form does.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user

from portal import events
from portal.accounts import email_change, invitations, links, recovery, sessions, throttle
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import public, signed_in
from portal.accounts.link_forms import (
    AcceptInvitationForm,
    EmailChangeForm,
    ForgotPasswordForm,
    ResetPasswordForm,
)
from portal.accounts.links import EMAIL_CHANGE, EMAIL_UNDO, INVITATION, PASSWORD_RESET
from portal.accounts.passwords import WeakPassword
from portal.accounts.services import WrongPassword
from portal.errors import DomainError
from portal.extensions import limiter
from portal.i18n.locales import DEFAULT
from portal.transactions import attempt
from portal.twofactor import policy

bp = Blueprint("links", __name__)

PAGES = {
    INVITATION: "links.invitation",
    PASSWORD_RESET: "links.reset_password",
    EMAIL_CHANGE: "links.email_confirm",
    EMAIL_UNDO: "links.email_undo",
}


@bp.record_once
def _check_settings(state) -> None:
    links.check_public_base_url(state.app.config)


def _session_key(purpose: str) -> str:
    return f"link:{purpose}"


def _invalid():
    page = render_template("accounts/link_invalid.html")
    return page, 404, {"Referrer-Policy": "no-referrer"}


def _held(purpose: str):
    """The usable link of ``purpose`` whose token this browser holds, or None."""
    return links.find(session.get(_session_key(purpose)), purpose)


def _drop(purpose: str) -> None:
    session.pop(_session_key(purpose), None)


@bp.get("/t/<token>")
@public
def follow(token: str):
    purpose = links.purpose_of(token)
    if purpose is None:
        return _invalid()
    session[_session_key(purpose)] = token
    response = redirect(url_for(PAGES[purpose]))
    # This URL holds the token: the next page must not be told it.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/invitation", methods=["GET", "POST"])
@public
def invitation():
    link = _held(INVITATION)
    if link is None:
        return _invalid()
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        try:
            with attempt():
                user = invitations.accept(link, form.name.data, form.password.data)
        except WeakPassword as exc:
            form.password.errors.append(str(exc))
        except DomainError as exc:
            form.name.errors.append(str(exc))
        else:
            if not user.locale:
                # The language they accepted in (their browser's): their emails' from now on.
                user.locale = str(get_locale() or DEFAULT)
            sessions.start(user)  # clears the session, the token with it
            login_user(user)
            events.user_signed_in.send(
                user, action="auth.signed_in", summary=f"User {user.id} signed in"
            )
            flash(_("Welcome, %(name)s. Your account is ready.", name=user.name), "success")
            # A role that needs two-factor sign-in sets it up now, while the new password is
            # fresh in mind; the grace period starts here, as at a first sign-in.
            policy.start_grace(user)
            if policy.required(user) and not policy.enrolled(user):
                return redirect(url_for("twofactor.setup"))
            return redirect(url_for("main.home"))
    return render_template("accounts/invitation_accept.html", form=form, invitation=link)


def _reset_ip_limit() -> str:
    return current_app.config["PASSWORD_RESET_IP_LIMIT"]


@bp.route("/password/forgot", methods=["GET", "POST"])
@public
@limiter.limit(_reset_ip_limit, methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        # One answer whatever happened: an account or not, the address's limit passed or not.
        recovery.request_reset(form.email.data)
        return render_template("accounts/forgot_sent.html")
    return render_template("accounts/forgot.html", form=form)


@bp.route("/password/reset", methods=["GET", "POST"])
@public
def reset_password():
    link = _held(PASSWORD_RESET)
    if link is None:
        return _invalid()
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            with attempt():
                recovery.reset(link, form.password.data)
        except WeakPassword as exc:
            form.password.errors.append(str(exc))
        except DomainError as exc:
            form.password.errors.append(str(exc))
        else:
            _drop(PASSWORD_RESET)
            if current_user.is_authenticated:
                session.clear()  # this browser's session ended with all the others
            flash(_("Your password is changed and every session signed out. Sign in."), "success")
            return redirect(url_for("accounts.login"))
    return render_template("accounts/reset_password.html", form=form)


@bp.route("/account/email", methods=["GET", "POST"])
@signed_in
def change_email():
    form = EmailChangeForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        # Guessing the password here is guessing a sign-in: the same limits apply.
        wait = throttle.consume(user.email)
        if wait is not None:
            form.password.errors.append(
                _("Too many attempts. Wait %(wait)s and try again.", wait=throttle.wait_words(wait))
            )
            page = render_template("accounts/email_change.html", form=form)
            return page, 429, {"Retry-After": str(wait)}
        try:
            with attempt():
                email_change.request_change(user, form.email.data, form.password.data)
        except WrongPassword as exc:
            form.password.errors.append(str(exc))
        except DomainError as exc:
            form.email.errors.append(str(exc))
        else:
            throttle.succeeded(user.email)
            flash(
                _("We sent a link to the new address. Your email changes when you follow it."),
                "success",
            )
            return redirect(url_for("accounts.account"))
    return render_template("accounts/email_change.html", form=form)


def _email_link_page(purpose: str, template: str, act, done):
    link = _held(purpose)
    if link is None:
        return _invalid()
    form = EmptyForm()
    if form.validate_on_submit():
        try:
            with attempt():
                act(link)
        except DomainError as exc:
            flash(str(exc), "error")
        else:
            _drop(purpose)
            flash(str(done), "success")
            if purpose == EMAIL_UNDO and current_user.is_authenticated:
                session.clear()  # every session of the account ended
            return redirect(url_for("accounts.login"))
    return render_template(template, form=form, link=link)


@bp.route("/account/email/confirm", methods=["GET", "POST"])
@public
def email_confirm():
    return _email_link_page(
        EMAIL_CHANGE,
        "accounts/email_confirm.html",
        email_change.confirm,
        _l("Your email is changed. Use the new one to sign in."),
    )


@bp.route("/account/email/undo", methods=["GET", "POST"])
@public
def email_undo():
    return _email_link_page(
        EMAIL_UNDO,
        "accounts/email_undo.html",
        email_change.undo,
        _l(
            "Your old email is back and every session is signed out. "
            "We sent it a link to choose a new password."
        ),
    )

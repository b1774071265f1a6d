"""The code page of sign-in, setting up two-factor, recovery codes, remembered browsers, and an
administrator's reset of another user's two-factor."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from portal import events
from portal.accounts import throttle
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required, public, signed_in
from portal.accounts.models import User
from portal.errors import DomainError
from portal.extensions import db, limiter
from portal.redirects import safe_next
from portal.transactions import attempt
from portal.twofactor import devices, policy, services, signin, totp
from portal.twofactor.forms import CodeForm, ConfirmForm
from portal.web import problem, wants_json

bp = Blueprint("twofactor", __name__)

# What a user who must set up two-factor (and is out of grace) may still reach.
_SETUP_ENDPOINTS = frozenset(
    {"twofactor.setup", "twofactor.begin", "accounts.logout", "static", "main.health"}
)


@bp.before_app_request
def send_overdue_to_setup():
    """Past the grace period without two-factor: nothing but the set-up page."""
    if request.endpoint in _SETUP_ENDPOINTS or not current_user.is_authenticated:
        return None
    if not policy.overdue(current_user):
        return None
    if wants_json() or request.method not in ("GET", "HEAD"):
        return problem(403, _("Set up two-factor sign-in first, at /account/two-factor."))
    flash(_("Your role requires two-factor sign-in: set it up to go on."), "info")
    return redirect(url_for("twofactor.setup"))


@bp.app_context_processor
def two_factor_helpers():
    def two_factor_grace():
        if not current_user.is_authenticated:
            return None
        return policy.grace_left(current_user)

    return {"two_factor_grace": two_factor_grace}


@bp.route("/login/two-factor", methods=["GET", "POST"])
@public
@limiter.limit(throttle.login_rate_limit, methods=["POST"])
def challenge():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    found = signin.pending()
    if found is None:
        flash(_("Sign in with your email and password first."), "info")
        return redirect(url_for("accounts.login"))
    user, next_url = found
    form = CodeForm()
    days = current_app.config["TWO_FACTOR_REMEMBER_DAYS"]
    form.remember.label.text = _("Do not ask again on this browser for %(days)s days", days=days)
    if form.validate_on_submit():
        wait = throttle.consume_code(user.id)
        if wait is not None:
            form.code.errors.append(
                _(
                    "Too many wrong codes. Wait %(wait)s and try again.",
                    wait=throttle.wait_words(wait),
                )
            )
            page = render_template("twofactor/challenge.html", form=form)
            return page, 429, {"Retry-After": str(wait)}
        method = services.verify(user, form.code.data)
        if method is None:
            events.user_sign_in_failed.send(
                user,
                action="auth.two_factor_failed",
                summary=f"Wrong or used two-factor code for user {user.id}",
            )
            form.code.errors.append(_("That code is not right, or was used already."))
            return render_template("twofactor/challenge.html", form=form), 401
        throttle.code_succeeded(user.id)
        home = url_for("main.home")
        response = signin.complete(
            user, safe_next(next_url, home), method=method, remember=form.remember.data
        )
        if method == services.RECOVERY:  # after the sign-in, which starts a fresh session
            left = services.recovery_left(user)
            flash(
                _(
                    "You signed in with a recovery code; %(left)s left. If your phone is lost, "
                    "set up two-factor again or ask an administrator.",
                    left=left,
                ),
                "info",
            )
        return response
    return render_template("twofactor/challenge.html", form=form)


@bp.route("/account/two-factor", methods=["GET", "POST"])
@signed_in
def setup():
    user = current_user._get_current_object()
    form = ConfirmForm()
    if policy.enrolled(user):
        return _manage(user, form)
    row = services.secret_row(user)
    if row is None:  # a GET writes nothing: the secret is made by the "Begin" button
        return _setup_page(user, form)
    if form.validate_on_submit():
        try:
            with attempt():
                codes = services.confirm(user, form.code.data)
        except DomainError as exc:
            form.code.errors.append(str(exc))
        else:
            devices.note_sign_in(user)  # this browser is the one it was set up on
            return render_template("twofactor/recovery_codes.html", codes=codes, first=True)
    uri = services.setup_uri(user, row)
    return _setup_page(user, form, qr=totp.qr_data_uri(uri), secret=totp.grouped(row.secret))


def _setup_page(user: User, form: ConfirmForm, **shown):
    return render_template(
        "twofactor/setup.html",
        form=form,
        required=policy.required(user),
        overdue=policy.overdue(user),
        **shown,
    )


def _manage(user: User, form: ConfirmForm):
    """Two-factor is on: its state, and new recovery codes against a current code."""
    if form.validate_on_submit():
        try:
            with attempt():
                codes = services.renew_recovery_codes(user, form.code.data)
        except DomainError as exc:
            form.code.errors.append(str(exc))
        else:
            return render_template("twofactor/recovery_codes.html", codes=codes)
    return render_template("twofactor/manage.html", form=form, left=services.recovery_left(user))


@bp.post("/account/two-factor/begin")
@signed_in
def begin():
    if EmptyForm().validate_on_submit() and not policy.enrolled(current_user):
        services.begin(current_user._get_current_object())
    return redirect(url_for("twofactor.setup"))


@bp.post("/account/devices/<int:row_id>/forget")
@signed_in
def forget_device(row_id: int):
    if EmptyForm().validate_on_submit() and devices.forget(row_id, current_user.id):
        flash(_("That browser will be asked for a code at its next sign-in."), "success")
    return redirect(url_for("accounts.account"))


@bp.post("/users/<int:user_id>/two-factor/reset")
@permission_required("user.manage")
def reset(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        with attempt():
            services.reset(user, actor=current_user._get_current_object())
    except DomainError as exc:
        flash(str(exc), "error")
    else:
        flash(
            _("Two-factor sign-in of %(name)s reset; they set it up again.", name=user.name),
            "success",
        )
    return redirect(url_for("accounts.user_edit", user_id=user.id))

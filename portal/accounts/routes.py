"""Sign-in and out, the user's own account and sessions, and staff and role administration."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from sqlalchemy import select

from portal import events
from portal.accounts import browsers, services, sessions, throttle
from portal.accounts.forms import (
    EmptyForm,
    LoginForm,
    PasswordChangeForm,
    RoleForm,
    UserCreateForm,
    UserEditForm,
)
from portal.accounts.guards import permission_required, public, signed_in
from portal.accounts.models import Role, User
from portal.accounts.passwords import WeakPassword
from portal.accounts.permissions import PERMISSIONS
from portal.accounts.safeguards import Refused
from portal.errors import DomainError
from portal.extensions import db, limiter
from portal.redirects import safe_next
from portal.transactions import attempt
from portal.twofactor import devices, policy, signin

bp = Blueprint("accounts", __name__)
# "Chrome on Android" for a session's or a remembered browser's user-agent string.
bp.add_app_template_filter(browsers.describe, "browser")


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(throttle.login_rate_limit, methods=["POST"])
def login():
    home = url_for("main.home")
    if current_user.is_authenticated:
        return redirect(home)
    form = LoginForm()
    if form.validate_on_submit():
        wait = throttle.consume(form.email.data)
        if wait is not None:
            # Keyed on the email as typed and the address, whether or not an account exists:
            # the same answer for every email.
            form.password.errors.append(
                _(
                    "Too many sign-in attempts. Wait %(wait)s and try again.",
                    wait=throttle.wait_words(wait),
                )
            )
            page = render_template("accounts/login.html", form=form)
            return page, 429, {"Retry-After": str(wait)}
        try:
            user = services.authenticate(form.email.data, form.password.data)
        except services.SignInFailed as exc:
            form.password.errors.append(str(exc))
            return render_template("accounts/login.html", form=form), 401
        throttle.succeeded(form.email.data)
        # With two-factor, only a half-signed-in note until the code (portal/twofactor/signin).
        return signin.after_password(user, safe_next(request.args.get("next"), home))
    return render_template("accounts/login.html", form=form)


@bp.post("/logout")
@signed_in
def logout():
    user = current_user._get_current_object()
    events.user_signed_out.send(
        user, action="auth.signed_out", summary=f"User {user.id} signed out"
    )
    sessions.end_current()  # its sockets close on every web process once this commits
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("accounts.login"))


@bp.route("/account", methods=["GET", "POST"])
@signed_in
def account():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        # Guessing the current password here is guessing a sign-in: the same limits apply.
        wait = throttle.consume(user.email)
        if wait is not None:
            form.current.errors.append(
                _("Too many attempts. Wait %(wait)s and try again.", wait=throttle.wait_words(wait))
            )
            return _account_page(form), 429, {"Retry-After": str(wait)}
        try:
            with attempt():
                ended = services.change_password(
                    user, form.current.data, form.new.data, keep_session=session.get("sid_row")
                )
        except services.WrongPassword as exc:
            form.current.errors.append(str(exc))
        except WeakPassword as exc:
            form.new.errors.append(str(exc))
        else:
            throttle.succeeded(user.email)
            flash(
                _("Password changed. Your other sessions are signed out.")
                if ended
                else _("Password changed."),
                "success",
            )
            return redirect(url_for("accounts.account"))
    return _account_page(form)


def _account_page(form: PasswordChangeForm) -> str:
    return render_template(
        "accounts/account.html",
        form=form,
        sessions=sessions.active_for(current_user.id),
        current_sid=session.get("sid_row"),
        revoke_form=EmptyForm(),
        remembered=devices.remembered_for(current_user.id),
        two_factor_on=policy.enrolled(current_user),
        two_factor_required=policy.required(current_user),
    )


@bp.post("/account/sessions/<int:row_id>/revoke")
@signed_in
def revoke_session(row_id: int):
    if EmptyForm().validate_on_submit() and sessions.revoke(row_id, user_id=current_user.id):
        flash(_("That session is signed out."), "success")
    return redirect(url_for("accounts.account"))


@bp.get("/users")
@permission_required("user.manage")
def users():
    rows = db.session.scalars(select(User).order_by(User.name)).all()
    return render_template("accounts/users.html", users=rows)


def role_choices():
    return [(r.id, r.name) for r in db.session.scalars(select(Role).order_by(Role.name))]


@bp.route("/users/new", methods=["GET", "POST"])
@permission_required("user.manage")
def user_new():
    form = UserCreateForm()
    form.role_id.choices = role_choices()
    if form.validate_on_submit():
        try:
            with attempt():
                user = services.create_user(
                    form.email.data,
                    form.name.data,
                    form.password.data,
                    db.session.get(Role, form.role_id.data),
                    actor=current_user._get_current_object(),
                )
        except WeakPassword as exc:
            form.password.errors.append(str(exc))
        except Refused as exc:
            form[exc.field].errors.append(str(exc))
        except DomainError as exc:
            form.email.errors.append(str(exc))
        else:
            flash(_("%(name)s can now sign in.", name=user.name), "success")
            return redirect(url_for("accounts.users"))
    return render_template("accounts/user_form.html", form=form, user=None)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@permission_required("user.manage")
def user_edit(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    form = UserEditForm(obj=user)
    form.role_id.choices = role_choices()
    if form.validate_on_submit():
        try:
            with attempt():
                services.set_user_role(
                    user,
                    db.session.get(Role, form.role_id.data),
                    form.active.data,
                    actor=current_user._get_current_object(),
                )
        except Refused as exc:
            form[exc.field].errors.append(str(exc))
        else:
            if not user.active:
                sessions.revoke_all(user.id)  # and their sockets, once this commits
            flash(_("Saved."), "success")
            return redirect(url_for("accounts.users"))
    return render_template("accounts/user_form.html", form=form, user=user, reset_form=EmptyForm())


@bp.get("/roles")
@permission_required("role.manage")
def roles():
    rows = db.session.scalars(select(Role).order_by(Role.name)).all()
    return render_template("accounts/roles.html", roles=rows)


@bp.route("/roles/new", methods=["GET", "POST"], defaults={"role_id": None})
@bp.route("/roles/<int:role_id>", methods=["GET", "POST"])
@permission_required("role.manage")
def role_edit(role_id: int | None):
    role = None if role_id is None else (db.session.get(Role, role_id) or abort(404))
    form = RoleForm(obj=role)
    form.permissions.choices = [(name, f"{name} — {label}") for name, label in PERMISSIONS.items()]
    if request.method == "GET" and role is not None:
        form.permissions.data = sorted(role.permissions)
    if form.validate_on_submit():
        try:
            with attempt():
                role = services.save_role(
                    role,
                    form.name.data,
                    form.description.data or "",
                    set(form.permissions.data),
                    actor=current_user._get_current_object(),
                )
        except Refused as exc:
            form[exc.field].errors.append(str(exc))
        except DomainError as exc:
            form.name.errors.append(str(exc))
        else:
            flash(_("Role %(name)s saved.", name=role.name), "success")
            return redirect(url_for("accounts.roles"))
    return render_template("accounts/role_form.html", form=form, role=role)

"""Sign-in and out, the user's own account and sessions, and staff and role administration."""

from __future__ import annotations

from functools import partial

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import check_password_hash

from portal import events, realtime
from portal.accounts import services, sessions
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
from portal.accounts.permissions import PERMISSIONS
from portal.errors import DomainError
from portal.extensions import db, limiter
from portal.transactions import after_commit, attempt

bp = Blueprint("accounts", __name__)


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after sign-in is a phishing tool.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("main.home")


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data)
        except services.SignInFailed as exc:
            # Returned, not raised: the failure count and the audit entry are committed.
            form.password.errors.append(str(exc))
            return render_template("accounts/login.html", form=form), 401
        sessions.start(user)
        login_user(user)
        events.user_signed_in.send(
            user, action="auth.signed_in", summary=f"User {user.id} signed in"
        )
        return redirect(_safe_next(request.args.get("next")))
    return render_template("accounts/login.html", form=form)


@bp.post("/logout")
@signed_in
def logout():
    user = current_user._get_current_object()
    events.user_signed_out.send(
        user, action="auth.signed_out", summary=f"User {user.id} signed out"
    )
    row_id = sessions.end_current()
    logout_user()
    if row_id:
        after_commit(partial(realtime.end_session_sockets, row_id))
    flash("You are signed out.", "info")
    return redirect(url_for("accounts.login"))


@bp.route("/account", methods=["GET", "POST"])
@signed_in
def account():
    form = PasswordChangeForm()
    if form.validate_on_submit():
        if not check_password_hash(current_user.password_hash, form.current.data):
            form.current.errors.append("This is not your current password.")
        else:
            try:
                current_user.password_hash = services.hash_password(form.new.data)
            except DomainError as exc:
                form.new.errors.append(str(exc))
            else:
                events.user_changed.send(
                    current_user._get_current_object(),
                    action="user.password_changed",
                    summary=f"User {current_user.id} changed their password",
                )
                flash("Password changed.", "success")
                return redirect(url_for("accounts.account"))
    return render_template(
        "accounts/account.html",
        form=form,
        sessions=sessions.active_for(current_user.id),
        current_sid=session.get("sid_row"),
        revoke_form=EmptyForm(),
    )


@bp.post("/account/sessions/<int:row_id>/revoke")
@signed_in
def revoke_session(row_id: int):
    if EmptyForm().validate_on_submit() and sessions.revoke(row_id, user_id=current_user.id):
        after_commit(partial(realtime.end_session_sockets, row_id))
        flash("That session is signed out.", "success")
    return redirect(url_for("accounts.account"))


@bp.get("/users")
@permission_required("user.manage")
def users():
    rows = db.session.scalars(select(User).order_by(User.name)).all()
    return render_template("accounts/users.html", users=rows)


def _role_choices():
    return [(r.id, r.name) for r in db.session.scalars(select(Role).order_by(Role.name))]


@bp.route("/users/new", methods=["GET", "POST"])
@permission_required("user.manage")
def user_new():
    form = UserCreateForm()
    form.role_id.choices = _role_choices()
    if form.validate_on_submit():
        try:
            with attempt():
                user = services.create_user(
                    form.email.data,
                    form.name.data,
                    form.password.data,
                    db.session.get(Role, form.role_id.data),
                )
        except DomainError as exc:
            form.email.errors.append(str(exc))
        else:
            flash(f"{user.name} can now sign in.", "success")
            return redirect(url_for("accounts.users"))
    return render_template("accounts/user_form.html", form=form, user=None)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@permission_required("user.manage")
def user_edit(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    form = UserEditForm(obj=user)
    form.role_id.choices = _role_choices()
    if form.validate_on_submit():
        if user.id == current_user.id and not form.active.data:
            form.active.errors.append("You cannot deactivate your own account.")
        else:
            services.set_user_role(user, db.session.get(Role, form.role_id.data), form.active.data)
            if not user.active:
                sessions.revoke_all(user.id)
            flash("Saved.", "success")
            return redirect(url_for("accounts.users"))
    return render_template("accounts/user_form.html", form=form, user=user)


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
                    role, form.name.data, form.description.data or "", set(form.permissions.data)
                )
        except DomainError as exc:
            form.name.errors.append(str(exc))
        else:
            flash(f"Role {role.name} saved.", "success")
            return redirect(url_for("accounts.roles"))
    return render_template("accounts/role_form.html", form=form, role=role)

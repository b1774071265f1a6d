"""Staff administration by email: invitations (send, list, resend, revoke) and reset links."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.accounts import invitations, recovery
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required
from portal.accounts.link_forms import InviteForm
from portal.accounts.models import Role, User
from portal.accounts.routes import role_choices
from portal.accounts.safeguards import Refused
from portal.errors import DomainError
from portal.extensions import db
from portal.projects import services as projects
from portal.timeutil import utcnow
from portal.transactions import attempt

bp = Blueprint("invitations", __name__, url_prefix="/users")


@bp.get("/invitations")
@permission_required("user.manage")
def index():
    return render_template(
        "accounts/invitations.html",
        invitations=invitations.pending(),
        roles={r.id: r.name for r in db.session.query(Role)},
        now=utcnow(),
        form=EmptyForm(),
    )


@bp.route("/invitations/new", methods=["GET", "POST"])
@permission_required("user.manage")
def new():
    actor = current_user._get_current_object()
    form = InviteForm()
    form.role_id.choices = role_choices()
    form.projects.choices = [(p.id, p.name) for p in projects.open_projects(actor)]
    if form.validate_on_submit():
        try:
            with attempt():
                invitations.invite(
                    form.email.data,
                    db.session.get(Role, form.role_id.data),
                    set(form.projects.data or ()),
                    actor=actor,
                )
        except Refused as exc:
            form[exc.field].errors.append(str(exc))
        except DomainError as exc:
            form.email.errors.append(str(exc))
        else:
            flash(_("Invitation sent."), "success")
            return redirect(url_for("invitations.index"))
    return render_template("accounts/invite_form.html", form=form)


def _act(action, invitation_id: int, done: str):
    if EmptyForm().validate_on_submit():
        try:
            with attempt():
                action(invitation_id, actor=current_user._get_current_object())
        except DomainError as exc:
            flash(str(exc), "error")
        else:
            flash(str(done), "success")
    return redirect(url_for("invitations.index"))


@bp.post("/invitations/<int:invitation_id>/resend")
@permission_required("user.manage")
def resend(invitation_id: int):
    return _act(invitations.resend, invitation_id, _("Sent again; the earlier link stops working."))


@bp.post("/invitations/<int:invitation_id>/revoke")
@permission_required("user.manage")
def revoke(invitation_id: int):
    return _act(invitations.revoke, invitation_id, _("Invitation revoked."))


@bp.post("/<int:user_id>/send-reset")
@permission_required("user.manage")
def send_reset(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    if EmptyForm().validate_on_submit():
        if not user.active:
            flash(_("This account is inactive: activate it first."), "error")
        else:
            recovery.issue(user, send=True, by=current_user._get_current_object())
            flash(_("A password reset link was emailed to %(name)s.", name=user.name), "success")
    return redirect(url_for("accounts.user_edit", user_id=user.id))

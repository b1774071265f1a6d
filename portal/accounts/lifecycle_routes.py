"""The user's own activity page, and closing an account."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal import inputs
from portal.accounts import lifecycle
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import permission_required, signed_in
from portal.accounts.models import User
from portal.errors import DomainError
from portal.extensions import db
from portal.transactions import attempt

bp = Blueprint("lifecycle", __name__)

PER_PAGE = 50


@bp.get("/account/activity")
@signed_in
def activity():
    query = lifecycle.own_activity_query(current_user.id)
    page = db.paginate(query, page=inputs.page_arg(), per_page=PER_PAGE, error_out=False)
    return render_template("accounts/activity.html", page=page)


@bp.post("/users/<int:user_id>/close")
@permission_required("user.manage")
def close(user_id: int):
    user = db.session.get(User, user_id) or abort(404)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        with attempt():
            lifecycle.close_account(user, actor=current_user._get_current_object())
    except DomainError as exc:
        flash(str(exc), "error")
        return redirect(url_for("accounts.user_edit", user_id=user.id))
    flash(
        _("The account of %(name)s is closed. It stays in the audit trail.", name=user.name),
        "success",
    )
    return redirect(url_for("accounts.users"))

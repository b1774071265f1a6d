"""The development outbox: what would have been sent, for staff trying the portal locally.

It exists only while an outbox provider (SMS or email) is in use outside production (a 404
otherwise), and shows only the channels that go to the outbox, so codes sent to real phones and
links sent to real inboxes are never on a page.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from flask_login import current_user

from portal.accounts.guards import permission_required
from portal.comms import email, services, whatsapp
from portal.comms.log_routes import STATUS_LABELS
from portal.comms.models import EMAIL, SMS
from portal.comms.providers import OUTBOX, check_config
from portal.timeutil import utcnow

bp = Blueprint("comms", __name__, url_prefix="/dev")
REFRESH_SECONDS = 5


@bp.record_once
def _check_settings(state) -> None:
    # Registering the blueprint is part of every app start: a wrong SMS or email setup stops
    # it there.
    check_config(state.app.config)
    email.check_config(state.app.config)
    whatsapp.check_config(state.app.config)


def outbox_channels() -> tuple[str, ...]:
    """The channels whose messages stay in the outbox (none in production)."""
    config = current_app.config
    if config.get("ENV_NAME") == "production":
        return ()
    found = []
    if config.get("SMS_PROVIDER") == OUTBOX:
        found.append(SMS)
    if (config.get("EMAIL_PROVIDER") or email.OUTBOX) == email.OUTBOX:
        found.append(EMAIL)
    return tuple(found)


def outbox_enabled() -> bool:
    return bool(outbox_channels())


@bp.get("/outbox")
@permission_required("outbox.read")
def outbox():
    if not outbox_enabled():
        abort(404)
    # Expired texts are blanked by the sweeper and by the next SMS job; a page view only
    # hides them (a GET changes nothing).
    response = current_app.make_response(
        render_template(
            "comms/outbox.html",
            messages=services.recent(current_user, outbox_channels()),
            refresh=REFRESH_SECONDS,
            now=utcnow(),
            status_labels=STATUS_LABELS,
        )
    )
    # A plain HTTP refresh: the page follows new messages without any script.
    response.headers["Refresh"] = str(REFRESH_SECONDS)
    response.headers["Cache-Control"] = "no-store"
    return response

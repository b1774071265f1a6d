"""Every route is either on the public allow-list or guarded; the guards hold at run time."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from portal.accounts import sessions
from portal.accounts.services import save_role
from portal.extensions import db, socketio

# Routes anyone may reach. Adding a route here is a security decision: review it.
PUBLIC = {
    "static",
    "accounts.login",
    # The code step after a right password: it reads only the half-signed-in note that the
    # password left in the signed session, and is rate-limited per account (tests/security/
    # test_two_factor.py holds that the note opens nothing else).
    "twofactor.challenge",
    "main.health",
    "main.favicon",
    # Kobo's REST service cannot sign in: the route checks the source's shared secret itself.
    "kobo.webhook",
    # The mobile-money provider's callback: only a known reference is heard, and only the
    # portal's own status query to the configured host changes anything.
    "payout_callbacks.momo_callback",
    # The SMS and WhatsApp providers' inbound webhooks: each call is checked against the
    # provider's signature (X-Twilio-Signature, X-Hub-Signature-256) before anything is read;
    # the WhatsApp handshake only echoes a challenge to the holder of the verify token.
    "inbound.sms",
    "inbound.whatsapp",
    "inbound.whatsapp_verify",
    # Vendors sign in with their phone and an SMS code (rate-limited per number and address).
    "vendor.sign_in",
    "vendor.sign_in_code",
    "vendor.sign_in_resend",
    # Emailed links and password recovery: the link's token is the credential (single use,
    # expiring, stored hashed); "forgot password" answers the same for every address.
    "links.follow",
    "links.invitation",
    "links.forgot_password",
    "links.reset_password",
    "links.email_confirm",
    "links.email_undo",
    # The message providers' webhooks (delivery receipts, STOP replies, WhatsApp's subscription
    # check): the provider's signature (X-Twilio-Signature, X-Hub-Signature-256) or the verify
    # token is checked before anything is read.
    "comms_receipts.sms_receipt",
    "comms_receipts.whatsapp_verify",
    "comms_receipts.whatsapp_webhook",
    "comms_receipts.inbound_sms",
}
VENDOR_SIGN_IN = "/vendor/sign-in"


def _vendor_guarded(app, rule) -> bool:
    return getattr(app.view_functions[rule.endpoint], "vendor_guarded", False)


def _rules(app):
    """Staff routes: neither public nor behind the vendor guard."""
    return [
        r
        for r in app.url_map.iter_rules()
        if r.endpoint not in PUBLIC and not _vendor_guarded(app, r)
    ]


def _vendor_rules(app):
    return [r for r in app.url_map.iter_rules() if _vendor_guarded(app, r)]


def _url(rule) -> str:
    return rule.build({arg: 1 for arg in rule.arguments}, append_unknown=False)[1]


def _methods(rule):
    return sorted(m for m in rule.methods if m in {"GET", "POST"})


def test_every_route_is_public_or_guarded(app):
    unguarded = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        marked_public = getattr(view, "is_public", False)
        guarded = hasattr(view, "required_permissions") or getattr(view, "vendor_guarded", False)
        if rule.endpoint in PUBLIC:
            if not marked_public and rule.endpoint != "static":
                unguarded.append(f"{rule.endpoint} is allow-listed but not marked @public")
        elif not guarded:
            unguarded.append(f"{rule.endpoint} ({rule.rule}) carries no permission check")
    assert not unguarded, "\n".join(unguarded)


def test_public_marks_match_the_allow_list(app):
    marked = {ep for ep, view in app.view_functions.items() if getattr(view, "is_public", False)}
    assert marked <= PUBLIC, f"marked public but not allow-listed: {marked - PUBLIC}"


def test_anonymous_requests_are_sent_to_sign_in(app, client):
    leaks = []
    for rule in _rules(app):
        for method in _methods(rule):
            response = client.open(_url(rule), method=method)
            if response.status_code != 302 or "/login" not in response.headers.get("Location", ""):
                leaks.append(f"{method} {rule.rule} -> {response.status_code}")
    for rule in _vendor_rules(app):
        for method in _methods(rule):
            response = client.open(_url(rule), method=method)
            location = response.headers.get("Location", "")
            if response.status_code != 302 or not location.startswith(VENDOR_SIGN_IN):
                leaks.append(f"{method} {rule.rule} -> {response.status_code}")
    assert not leaks, "\n".join(leaks)


def test_vendor_routes_refuse_a_staff_session(app, client, make_user, login):
    """A staff sign-in, even an admin's, opens no vendor page: those need a vendor session."""
    assert _vendor_rules(app), "no vendor routes found"
    login(client, make_user("admin"))
    leaks = []
    for rule in _vendor_rules(app):
        for method in _methods(rule):
            response = client.open(_url(rule), method=method)
            location = response.headers.get("Location", "")
            if response.status_code != 302 or not location.startswith(VENDOR_SIGN_IN):
                leaks.append(f"{method} {rule.rule} -> {response.status_code}")
    assert not leaks, "\n".join(leaks)


def test_staff_routes_refuse_a_vendor_session(app, client, make_vendor):
    """A vendor signed in on the phone is not a staff user anywhere."""
    from flask import session

    from portal.vendor_portal import sessions as vendor_sessions

    vendor = make_vendor(status="approved")
    db.session.commit()
    with app.test_request_context():
        vendor_sessions.start(vendor)
        db.session.commit()
        signed_in = dict(session)
    with client.session_transaction() as browser:
        browser.update(signed_in)
    assert client.get("/vendor/").status_code == 200
    leaks = []
    for rule in _rules(app):
        for method in _methods(rule):
            response = client.open(_url(rule), method=method)
            if response.status_code != 302 or "/login" not in response.headers.get("Location", ""):
                leaks.append(f"{method} {rule.rule} -> {response.status_code}")
    assert not leaks, "\n".join(leaks)


def test_a_user_without_permissions_is_refused_everywhere(app, client, make_user, login):
    nobody = save_role(None, "nobody", "holds no permission", set())
    user = make_user("viewer")
    user.role = nobody
    db.session.commit()
    assert login(client, user).status_code == 302
    leaks = []
    for rule in _rules(app):
        view = app.view_functions[rule.endpoint]
        if not view.required_permissions:
            continue  # pages about the user's own account
        for method in _methods(rule):
            response = client.open(_url(rule), method=method)
            if response.status_code != 403:
                leaks.append(f"{method} {rule.rule} -> {response.status_code}")
    assert not leaks, "\n".join(leaks)


def test_anonymous_socket_is_refused(app):
    sio = socketio.test_client(app, flask_test_client=app.test_client())
    assert not sio.is_connected()


@pytest.mark.parametrize("topic", ["jobs", "job"])
def test_socket_topic_needs_its_permission(app, client, make_user, login, topic):
    nobody = save_role(None, "nobody", "holds no permission", set())
    user = make_user("viewer")
    user.role = nobody
    db.session.commit()
    login(client, user)
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.is_connected()
    ack = sio.emit("subscribe", {"topic": topic, "id": 1}, callback=True)
    assert ack == {"ok": False, "error": "forbidden"}


def test_client_cannot_name_a_room(app, client, make_user, login):
    user = make_user("admin")
    login(client, user)
    sio = socketio.test_client(app, flask_test_client=client)
    ack = sio.emit("subscribe", {"topic": "user:1"}, callback=True)
    assert ack == {"ok": False, "error": "unknown topic"}


def test_sign_out_closes_the_sessions_sockets(app, client, make_user, login):
    user = make_user("admin")
    login(client, user)
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.emit("subscribe", {"topic": "jobs"}, callback=True)["ok"] is True
    client.post("/logout")
    assert not sio.is_connected()


def test_revoking_a_session_closes_its_sockets(app, client, make_user, login):
    user = make_user("admin")
    login(client, user)
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.emit("subscribe", {"topic": "jobs"}, callback=True)["ok"] is True
    (row,) = sessions.active_for(user.id)
    sessions.revoke(row.id)
    assert sio.is_connected(), "closed before the revoke committed"
    db.session.commit()
    assert not sio.is_connected()


def test_socket_refused_once_its_session_is_revoked_unheard(app, client, make_user, login):
    """A revoke whose message never arrived (written by hand, Redis down): the socket is still
    open, but every event is refused."""
    user = make_user("admin")
    login(client, user)
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.emit("subscribe", {"topic": "jobs"}, callback=True)["ok"] is True
    (row,) = sessions.active_for(user.id)
    db.session.execute(
        text("UPDATE user_sessions SET revoked_at = CURRENT_TIMESTAMP WHERE id = :id"),
        {"id": row.id},
    )
    db.session.commit()
    ack = sio.emit("subscribe", {"topic": "jobs"}, callback=True)
    assert ack == {"ok": False, "error": "signed out"}


def test_security_headers(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_session_cookie_flags(app, client, make_user, login):
    user = make_user("admin")
    response = login(client, user)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie

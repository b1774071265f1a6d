"""Two-factor sign-in under attack: a code replayed in its own time step, a recovery code used
twice, guessing codes, the half-signed-in state, forged and revoked remembered browsers, and an
administrator taking off their own second factor."""

from __future__ import annotations

from datetime import timedelta

from itsdangerous import URLSafeSerializer
from sqlalchemy import select, update

from portal.accounts.models import User
from portal.extensions import db, socketio
from portal.timeutil import utcnow
from portal.twofactor import devices, services, totp
from portal.twofactor.models import KnownDevice, TwoFactorSecret
from tests.security.test_route_guards import _methods, _rules, _url
from tests.support import twofactor


def _password(client, user, passwords):
    reply = client.post("/login", data={"email": user.email, "password": passwords[user.email]})
    assert reply.headers["Location"].endswith("/login/two-factor")
    return reply


def _code(client, code, **extra):
    return client.post("/login/two-factor", data={"code": code, **extra})


def test_a_code_is_refused_a_second_time_in_its_own_step(
    app, make_user, enrol, passwords, totp_secrets
):
    user = make_user("admin")
    enrol(user)
    db.session.commit()
    code = twofactor.code(totp_secrets[user.email])
    first, second = app.test_client(), app.test_client()
    _password(first, user, passwords)
    _password(second, user, passwords)
    assert _code(first, code).status_code == 302
    assert _code(second, code).status_code == 401
    assert second.get("/").status_code == 302


def test_an_older_code_is_refused_after_a_newer_one(app, make_user, enrol):
    user = make_user("admin")
    enrol(user)
    row = db.session.get(TwoFactorSecret, user.id)
    now = totp.current_step()
    row.last_step = now - 2  # set-up was a while ago
    assert services.verify(user, totp.code_at(row.secret, now + 1)) == services.TOTP
    assert services.verify(user, totp.code_at(row.secret, now)) is None


def test_one_code_checked_twice_passes_once(app, make_user, enrol):
    """The check and the spend are one conditional UPDATE: the second finds the step taken
    (PostgreSQL serialises two such updates on the row, so racing requests behave the same)."""
    user = make_user("admin")
    enrol(user)
    row = db.session.get(TwoFactorSecret, user.id)
    row.last_step = None
    db.session.commit()
    code = totp.code_at(row.secret, totp.current_step())
    results = [services.verify(user, code) for _ in range(2)]
    assert sorted(map(str, results)) == ["None", "totp"]


def test_a_recovery_code_is_refused_a_second_time(app, make_user, enrol, passwords):
    user = make_user("admin")
    codes = enrol(user)
    db.session.commit()
    first, second = app.test_client(), app.test_client()
    _password(first, user, passwords)
    assert _code(first, codes[3]).status_code == 302
    _password(second, user, passwords)
    assert _code(second, codes[3]).status_code == 401
    other = make_user("admin")
    enrol(other)
    db.session.commit()
    third = app.test_client()
    _password(third, other, passwords)
    assert _code(third, codes[4]).status_code == 401  # another user's code is no code here


def test_guessing_codes_is_limited_per_account(app, make_user, enrol, passwords, totp_secrets):
    user = make_user("admin")
    enrol(user)
    db.session.commit()
    # Each guess from a different address and browser: the count is the account's.
    answers = []
    for n in range(6):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 1}"
        _password(client, user, passwords)
        answers.append(_code(client, "000000").status_code)
    assert answers[:5] == [401] * 5 or 302 in answers[:5]  # 000000 may be right once in 10^6
    assert answers[5] == 429
    # Even the right code waits: the limit holds whatever is typed.
    client = app.test_client()
    _password(client, user, passwords)
    late = _code(client, twofactor.code(totp_secrets[user.email]))
    assert late.status_code == 429 and int(late.headers["Retry-After"]) > 0


def test_the_half_signed_in_state_opens_no_page(app, make_user, enrol, passwords):
    user = make_user("admin")
    enrol(user)
    db.session.commit()
    client = app.test_client()
    _password(client, user, passwords)
    leaks = []
    for rule in _rules(app):
        if rule.endpoint == "twofactor.challenge":
            continue
        for method in _methods(rule):
            response = client.open(_url(rule), method=method)
            if response.status_code != 302 or "/login" not in response.headers.get("Location", ""):
                leaks.append(f"{method} {rule.rule} -> {response.status_code}")
    assert not leaks, "\n".join(leaks)
    assert client.get("/login/two-factor").status_code == 200  # and the note is still usable


def test_the_half_signed_in_state_opens_no_socket(app, make_user, enrol, passwords):
    user = make_user("admin")
    enrol(user)
    db.session.commit()
    client = app.test_client()
    _password(client, user, passwords)
    sio = socketio.test_client(app, flask_test_client=client)
    assert not sio.is_connected()


def test_a_user_out_of_grace_gets_no_socket(app, make_user, login):
    user = make_user("finance")
    client = app.test_client()
    login(client, user)
    db.session.execute(
        update(User)
        .where(User.id == user.id)
        .values(two_factor_grace_until=utcnow() - timedelta(minutes=1))
    )
    db.session.commit()
    sio = socketio.test_client(app, flask_test_client=client)
    assert not sio.is_connected()


def _remembered_browser(app, user, passwords, totp_secrets):
    browser = app.test_client()
    _password(browser, user, passwords)
    _code(browser, twofactor.code(totp_secrets[user.email]), remember="y")
    browser.post("/logout")
    return browser


def test_a_forged_remember_cookie_is_refused(app, make_user, enrol, passwords, totp_secrets):
    user = make_user("admin")
    enrol(user)
    db.session.commit()
    _remembered_browser(app, user, passwords, totp_secrets)
    # A token of the attacker's choosing, signed with a key that is not the app's.
    forged = URLSafeSerializer("not the key", salt="portal known device").dumps("x" * 43)
    attacker = app.test_client()
    attacker.set_cookie(devices.COOKIE, forged)
    reply = attacker.post("/login", data={"email": user.email, "password": passwords[user.email]})
    assert reply.headers["Location"].endswith("/login/two-factor")
    # The owner's own cookie, copied to another user's sign-in, is not theirs to skip with.
    other = make_user("admin")
    enrol(other)
    db.session.commit()
    browser = _remembered_browser(app, user, passwords, totp_secrets)
    reply = browser.post("/login", data={"email": other.email, "password": passwords[other.email]})
    assert reply.headers["Location"].endswith("/login/two-factor")


def test_a_revoked_or_expired_remembered_browser_is_asked_again(
    app, make_user, enrol, passwords, totp_secrets
):
    user = make_user("admin")
    enrol(user)
    db.session.commit()
    browser = _remembered_browser(app, user, passwords, totp_secrets)
    row = db.session.scalar(select(KnownDevice).where(KnownDevice.user_id == user.id))
    row.remembered_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    reply = browser.post("/login", data={"email": user.email, "password": passwords[user.email]})
    assert reply.headers["Location"].endswith("/login/two-factor")
    browser = _remembered_browser(app, user, passwords, totp_secrets)
    assert devices.forget_all(user.id) >= 1
    db.session.commit()
    reply = browser.post("/login", data={"email": user.email, "password": passwords[user.email]})
    assert reply.headers["Location"].endswith("/login/two-factor")
    # Someone else cannot forget (or learn of) the user's browsers.
    other = make_user("viewer")
    db.session.commit()
    browser = _remembered_browser(app, user, passwords, totp_secrets)
    row = db.session.scalar(
        select(KnownDevice).where(
            KnownDevice.user_id == user.id, KnownDevice.remembered_until.is_not(None)
        )
    )
    assert not devices.forget(row.id, other.id)


def test_an_admin_cannot_reset_their_own_two_factor(app, client, make_user, enrol, login):
    admin = make_user("admin")
    enrol(admin)
    login(client, admin)
    reply = client.post(f"/users/{admin.id}/two-factor/reset", follow_redirects=True)
    assert "cannot reset your own" in reply.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, admin.id).two_factor_enabled_at is not None
    assert db.session.get(TwoFactorSecret, admin.id) is not None


def test_resetting_needs_user_manage(app, client, make_user, enrol, login):
    target = make_user("admin")
    enrol(target)
    viewer = make_user("viewer")
    login(client, viewer)
    assert client.post(f"/users/{target.id}/two-factor/reset").status_code == 403
    db.session.expire_all()
    assert db.session.get(User, target.id).two_factor_enabled_at is not None


def test_codes_are_not_written_to_the_logs(app, make_user, enrol, passwords, totp_secrets, caplog):
    user = make_user("admin")
    codes = enrol(user)
    db.session.commit()
    caplog.set_level("DEBUG")
    client = app.test_client()
    _password(client, user, passwords)
    code = twofactor.code(totp_secrets[user.email])
    _code(client, "123456")
    _code(client, codes[0])
    text = caplog.text
    assert code not in text and codes[0] not in text and totp_secrets[user.email] not in text

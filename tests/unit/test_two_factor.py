"""Two-factor sign-in: set-up, the code step, recovery codes, the policy and its grace period,
remembered browsers, an administrator's reset, and the new-device notice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.timeutil import utcnow
from portal.twofactor import policy, services, totp
from portal.twofactor.models import KnownDevice, RecoveryCode, TwoFactorSecret
from tests.support import twofactor


def _actions(user_id: int | None = None) -> list[str]:
    query = select(AuditEntry.action).order_by(AuditEntry.id)
    return list(db.session.scalars(query))


@pytest.fixture
def sent(monkeypatch):
    """Notices that would go out by email: (user id, template, context)."""
    from portal.accounts import notify

    out = []
    monkeypatch.setattr(
        notify, "send_email", lambda user, template, **ctx: out.append((user.id, template, ctx))
    )
    return out


# ------------------------------------------------------------------ codes


def test_a_code_matches_its_step_and_the_steps_either_side_only():
    secret = totp.new_secret()
    now = 1_700_000_000.0
    step = totp.current_step(now)
    for offset in (-1, 0, 1):
        assert (
            totp.matching_step(secret, totp.code_at(secret, step + offset), at=now) == step + offset
        )
    for offset in (-3, -2, 2, 3):
        code = totp.code_at(secret, step + offset)
        if all(code != totp.code_at(secret, step + o) for o in (-1, 0, 1)):
            assert totp.matching_step(secret, code, at=now) is None
    assert totp.matching_step(secret, "12345", at=now) is None
    assert totp.matching_step(secret, "abcdef", at=now) is None


def test_the_qr_code_is_an_svg_drawn_here():
    uri = totp.provisioning_uri(totp.new_secret(), "a@example.org", "Aid portal")
    assert uri.startswith("otpauth://totp/Aid%20portal:a%40example.org?")
    assert totp.qr_data_uri(uri).startswith("data:image/svg+xml;base64,")


# ------------------------------------------------------------------ set-up


def test_setup_is_confirmed_by_a_first_code_and_gives_ten_recovery_codes(app, make_user):
    user = make_user("admin")
    row = services.begin(user)
    assert services.begin(user).secret == row.secret  # reloading keeps the same QR code
    with pytest.raises(services.CodeRefused):
        services.confirm(
            user,
            "000000" if totp.code_at(row.secret, totp.current_step()) != "000000" else "111111",
        )
    assert user.two_factor_enabled_at is None
    codes = services.confirm(user, totp.code_at(row.secret, totp.current_step()))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert user.two_factor_enabled_at is not None
    stored = db.session.scalars(
        select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)
    )
    assert not set(codes) & set(stored)  # only keyed hashes are kept
    raw = db.session.execute(
        text("select secret from two_factor_secrets where user_id = :id"), {"id": user.id}
    ).scalar_one()
    assert row.secret not in raw and raw.startswith("v1:")  # encrypted at rest
    assert "two_factor.enabled" in _actions()


def test_the_setup_page_shows_a_qr_code_and_turns_two_factor_on(app, client, make_user, login):
    user = make_user("viewer")
    login(client, user)
    assert "Begin" in client.get("/account/two-factor").get_data(as_text=True)
    assert client.post("/account/two-factor/begin").status_code == 302
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert 'src="data:image/svg+xml;base64,' in page
    secret = twofactor.secret_from_setup_page(page)
    wrong = client.post("/account/two-factor", data={"code": "12"})
    assert wrong.status_code == 200 and "not right" in wrong.get_data(as_text=True)
    done = client.post(
        "/account/two-factor", data={"code": totp.code_at(secret, totp.current_step())}
    )
    body = done.get_data(as_text=True)
    assert "shown only now" in body and body.count("<li>") >= 10
    db.session.expire_all()
    assert db.session.get(User, user.id).two_factor_enabled_at is not None


# ------------------------------------------------------------------ sign-in


def test_sign_in_asks_for_the_code_after_the_password(
    app, client, make_user, enrol, passwords, totp_secrets
):
    user = make_user("admin")
    enrol(user)
    db.session.commit()
    first = client.post("/login", data={"email": user.email, "password": passwords[user.email]})
    assert first.status_code == 302 and first.headers["Location"].endswith("/login/two-factor")
    assert client.get("/").status_code == 302  # nothing yet
    assert client.post("/login/two-factor", data={"code": "000000x"}).status_code == 401
    done = client.post("/login/two-factor", data={"code": twofactor.code(totp_secrets[user.email])})
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    assert "auth.two_factor_failed" in _actions() and "auth.signed_in" in _actions()


def test_a_recovery_code_signs_in_once(app, client, make_user, enrol, passwords):
    user = make_user("admin")
    codes = enrol(user)
    db.session.commit()

    def sign_in(code):
        fresh = app.test_client()
        fresh.post("/login", data={"email": user.email, "password": passwords[user.email]})
        return fresh.post("/login/two-factor", data={"code": code})

    assert sign_in(codes[0].upper().replace("-", " ")).status_code == 302
    assert sign_in(codes[0]).status_code == 401
    assert services.recovery_left(user) == 9
    assert "two_factor.recovery_code_used" in _actions()


def test_new_recovery_codes_replace_the_old_ones(app, make_user, enrol, totp_secrets):
    user = make_user("admin")
    old = enrol(user)
    with pytest.raises(services.CodeRefused):
        services.renew_recovery_codes(user, old[0])  # a recovery code does not renew them
    new = services.renew_recovery_codes(user, twofactor.code(totp_secrets[user.email]))
    assert services.verify(user, old[1]) is None
    assert services.verify(user, new[0]) == services.RECOVERY


def test_the_half_signed_in_note_expires_and_dies_with_a_password_change(
    app, client, make_user, enrol, passwords, totp_secrets
):
    from portal.accounts.passwords import hash_password
    from portal.twofactor import signin

    user = make_user("admin")
    enrol(user)
    db.session.commit()
    client.post("/login", data={"email": user.email, "password": passwords[user.email]})
    user.password_hash = hash_password("another long pass phrase for this")
    db.session.commit()
    refused = client.post(
        "/login/two-factor", data={"code": twofactor.code(totp_secrets[user.email])}
    )
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")
    assert client.get("/").status_code == 302
    with client.session_transaction() as browser:
        browser[signin.PENDING] = {"uid": user.id, "at": 1, "fp": "x", "next": "/"}
    assert client.get("/login/two-factor").headers["Location"].startswith("/login")


# ------------------------------------------------------------------ policy


def test_the_policy_names_roles_with_sensitive_permissions(app, make_user):
    assert policy.required(make_user("admin"))
    assert policy.required(make_user("finance"))
    assert policy.required(make_user("field agent"))  # personal data
    assert not policy.required(make_user("viewer"))


def test_grace_starts_at_first_sign_in_then_pages_send_to_setup(app, client, make_user, login):
    user = make_user("programme manager")
    assert login(client, user).status_code == 302
    db.session.refresh(user)
    left = user.two_factor_grace_until - utcnow()
    hours = app.config["TWO_FACTOR_GRACE_HOURS"]
    assert timedelta(hours=hours) - timedelta(minutes=1) < left <= timedelta(hours=hours)
    home = client.get("/")
    assert home.status_code == 200 and "set it up" in home.get_data(as_text=True)
    user.two_factor_grace_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    sent_away = client.get("/projects/")
    assert sent_away.status_code == 302 and sent_away.headers["Location"].endswith(
        "/account/two-factor"
    )
    assert client.get("/account/two-factor").status_code == 200
    api = client.get("/projects/", headers={"Accept": "application/json"})
    assert api.status_code == 403
    assert client.post("/logout").status_code == 302


def test_no_grace_yet_is_not_overdue_the_next_sign_in_starts_it(app, client, make_user, login):
    user = make_user("finance")
    login(client, user)
    user.two_factor_grace_until = None  # signed in before the policy came
    db.session.commit()
    assert client.get("/projects/").status_code == 200
    login(app.test_client(), user)
    db.session.refresh(user)
    assert user.two_factor_grace_until is not None


def test_a_viewer_is_never_sent_to_setup(app, client, make_user, login):
    user = make_user("viewer")
    login(client, user)
    db.session.refresh(user)
    assert user.two_factor_grace_until is None
    assert client.get("/").status_code == 200


# ------------------------------------------------------------------ remembered browsers


def _remembering_browser(app, user, passwords, totp_secrets):
    """A browser signed in with a code and "do not ask again" ticked."""
    db.session.commit()
    browser = app.test_client()
    browser.post("/login", data={"email": user.email, "password": passwords[user.email]})
    browser.post(
        "/login/two-factor",
        data={"code": twofactor.code(totp_secrets[user.email]), "remember": "y"},
    )
    return browser


def test_a_remembered_browser_skips_the_code_until_forgotten(
    app, make_user, enrol, passwords, totp_secrets
):
    user = make_user("admin")
    enrol(user)
    browser = _remembering_browser(app, user, passwords, totp_secrets)
    browser.post("/logout")
    again = browser.post("/login", data={"email": user.email, "password": passwords[user.email]})
    assert again.headers["Location"] == "/"  # no code asked
    page = browser.get("/account").get_data(as_text=True)
    assert "data-remembered-device" in page
    row = db.session.scalar(select(KnownDevice).where(KnownDevice.user_id == user.id))
    assert browser.post(f"/account/devices/{row.id}/forget").status_code == 302
    browser.post("/logout")
    third = browser.post("/login", data={"email": user.email, "password": passwords[user.email]})
    assert third.headers["Location"].endswith("/login/two-factor")


def test_a_new_browser_is_notified_but_not_the_first_one(app, make_user, login, sent):
    user = make_user("viewer")
    first, second = app.test_client(), app.test_client()
    login(first, user)
    assert sent == []
    login(first, user)  # the same browser again
    assert sent == []
    login(second, user)
    assert [(uid, template) for uid, template, _ in sent] == [(user.id, "new_device")]


def test_the_notice_texts_render(app, make_user):
    from portal.accounts import notify

    user = make_user("viewer")
    with app.test_request_context():
        agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
        subject, body = notify.render("new_device", user, user_agent=agent, at=utcnow())
        assert subject == "New sign-in to your aid portal account"
        assert "Firefox on Windows" in body
        subject, body = notify.render("two_factor_reset", user, at=utcnow())
        assert "reset" in subject


# ------------------------------------------------------------------ administrator reset


def test_an_admin_resets_another_users_two_factor_not_their_own(
    app, client, make_user, enrol, login, sent
):
    admin, other = make_user("admin"), make_user("finance")
    enrol(admin)
    enrol(other)
    login(client, admin)
    own = client.post(f"/users/{admin.id}/two-factor/reset")
    assert own.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, admin.id).two_factor_enabled_at is not None
    assert client.post(f"/users/{other.id}/two-factor/reset").status_code == 302
    db.session.expire_all()
    other = db.session.get(User, other.id)
    assert other.two_factor_enabled_at is None
    assert db.session.get(TwoFactorSecret, other.id) is None
    assert "two_factor.reset" in _actions()
    assert (other.id, "two_factor_reset") in [(u, t) for u, t, _ in sent]


def test_the_reset_command_is_for_operators(app, make_user, enrol):
    user = make_user("admin")
    enrol(user)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["two-factor-reset", "--email", user.email])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(User, user.id).two_factor_enabled_at is None
    again = app.test_cli_runner().invoke(args=["two-factor-reset", "--email", user.email])
    assert again.exit_code != 0


def test_a_new_password_ends_the_remembered_browsers(
    app, make_user, enrol, passwords, totp_secrets
):
    from portal.accounts import services as accounts
    from portal.twofactor import devices

    user = make_user("admin")
    enrol(user)
    _remembering_browser(app, user, passwords, totp_secrets)
    assert len(devices.remembered_for(user.id)) == 1
    accounts.change_password(
        user, passwords[user.email], "a brand new long pass phrase here", keep_session=None
    )
    db.session.commit()
    assert devices.remembered_for(user.id) == []

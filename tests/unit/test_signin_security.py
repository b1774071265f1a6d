"""Staff sign-in under attack: redirects, throttling, enumeration, passwords, sessions, roles.

Generated input runs with a fixed seed and a bounded number of examples (more when CI=true).
"""

from __future__ import annotations

import itertools
import os
import re
import string
from datetime import timedelta
from urllib.parse import quote, urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from portal.accounts import passwords, safeguards, sessions
from portal.accounts import services as accounts
from portal.accounts.models import User, UserSession
from portal.accounts.permissions import PERMISSIONS
from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.projects import services as projects
from portal.redirects import safe_next
from portal.timeutil import utcnow
from tests.conftest import DEFAULT_PASSWORD

CI = os.environ.get("CI") == "true"


def examples(n: int) -> int:
    return n * 4 if CI else n


def seeded(n: int, **kw):
    return settings(
        derandomize=True,
        max_examples=examples(n),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        **kw,
    )


_ids = itertools.count(1)


def fresh_email() -> str:
    return f"staff{next(_ids)}@example.org"


def from_address(client, address: str):
    """A client whose requests come from ``address``."""
    client.environ_base["REMOTE_ADDR"] = address
    return client


# --------------------------------------------------------------------------- redirects


def browser_leaves_site(location: str) -> bool:
    """Whether a browser following ``Location: location`` from https://portal.test/x leaves
    the origin, by the WHATWG URL parser's rules that matter here: leading and trailing C0
    controls and spaces are trimmed, ASCII tab and newline removed anywhere, a backslash read as
    a slash (for http and https), a scheme before any slash sets a new URL, and a leading ``//``
    names a host."""
    s = location.strip("".join(chr(c) for c in range(0x21)))
    s = re.sub("[\t\n\r]", "", s)
    s = s.replace("\\", "/")
    if re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", s):
        return True
    return s.startswith("//")


HOSTILE_PREFIXES = [
    "/",
    "\\",
    "//",
    "/\\",
    "\\/",
    "\\\\",
    "\t",
    "\n",
    "\r\n",
    "%09",
    "%0a",
    "%5c",
    "%2f",
    " ",
    "\x00",
    "\x0b",
    "\x7f",
    "\u00a0",
    "\u2028",
    "\u200b",
    "\u3000",
    "\ufeff",
    "／",
    "＼",
    "。",
    "https:",
    "HtTpS:",
    "http:",
    "javascript:",
    "JaVaScRiPt:",
    "data:",
    "mailto:",
    "ftp:",
    "x-custom+1.0:",
    "user:pass@",
    "@",
    ".",
    "..",
    "?",
    "#",
    ":",
    ";",
]
HOSTS = ["evil.example", "evil.example:8443", "127.0.0.1", "[::1]", "еvil.example", "EVIL.example"]
TAILS = ["", "/", "/path", "?next=//evil.example", "#frag", "/%2e%2e/", "\r\nSet-Cookie: a=b"]

hostile_targets = st.builds(
    lambda prefix, host, tail, noise: prefix + host + tail + noise,
    st.lists(st.sampled_from(HOSTILE_PREFIXES), max_size=5).map("".join),
    st.sampled_from(["", *HOSTS]),
    st.sampled_from(TAILS),
    st.text(max_size=8),
)


def assert_stays_on_site(location: str) -> None:
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc, location
    assert location.startswith("/") and not location.startswith("//"), location
    assert not browser_leaves_site(location), location
    assert all(0x21 <= ord(ch) < 0x7F for ch in location), location


@seeded(600)
@given(target=hostile_targets)
@example(target="/\t/evil.example")
@example(target="/\\evil.example")
@example(target="\\\\evil.example")
@example(target="/\r\n/evil.example")
@example(target="https:evil.example")
@example(target=" //evil.example")
def test_safe_next_never_leaves_the_site(target):
    result = safe_next(target, "/home")
    assert_stays_on_site(result)
    if result != "/home":
        # What is kept is the target itself, only percent-encoded where it had to be.
        assert result == quote(target, safe="/?&=;:@!$'()*+,-._~%#").split("#")[0].rstrip("?")


@pytest.mark.parametrize(
    "target",
    ["/projects/3", "/projects/?status=active&q=r%C3%A4m", "/beneficiaries?page=2", "/"],
)
def test_safe_next_keeps_same_site_paths(target):
    assert safe_next(target, "/home") == target


def test_safe_next_percent_encodes_what_a_browser_would():
    assert (
        safe_next("/beneficiaries?q=राम", "/home") == "/beneficiaries?q=%E0%A4%B0%E0%A4%BE%E0%A4%AE"
    )


@pytest.mark.parametrize(
    ("target", "under", "expected"),
    [
        ("/vendor/charge", "/vendor", "/vendor/charge"),
        ("/vendor", "/vendor", "/vendor"),
        ("/vendorX", "/vendor", "/fallback"),
        ("/projects/1", "/vendor", "/fallback"),
        ("/vendor/\r\n", "/vendor", "/fallback"),
        ("/jobs/?status=failed", "/jobs", "/jobs/?status=failed"),
    ],
)
def test_safe_next_under_a_prefix(target, under, expected):
    assert safe_next(target, "/fallback", under=under) == expected


@seeded(12)
@given(target=hostile_targets)
@example(target="/\t/evil.example")
@example(target="/\r\nX: y")
def test_sign_in_redirects_only_on_site(app, make_user, passwords, target):
    user = make_user(email=fresh_email())
    db.session.commit()
    client = app.test_client()
    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": user.email, "password": passwords[user.email]},
    )
    if response.status_code == 400:
        # A control character in any query parameter is refused by the input rule, by name.
        assert any(ord(c) < 32 or 127 <= ord(c) < 160 for c in target), target
        assert "next" in response.get_data(as_text=True)
        return
    assert response.status_code == 302
    assert_stays_on_site(response.headers["Location"])


def test_the_reported_spellings_go_home(client, make_user, passwords):
    user = make_user()
    db.session.commit()
    answers = {}
    for raw in ("/%09/evil.example", "/%0d%0aSet-Cookie:%20a=b", "/%5cevil.example"):
        client.post("/logout")
        response = client.post(
            f"/login?next={raw}", data={"email": user.email, "password": passwords[user.email]}
        )
        answers[raw] = (response.status_code, response.headers.get("Location"))
    # Tab and CRLF are refused by the input rule before sign-in (400 naming "next"); the
    # backslash is decided on the parsed URL and goes home. Nothing leaves the site.
    assert answers == {
        "/%09/evil.example": (400, None),
        "/%0d%0aSet-Cookie:%20a=b": (400, None),
        "/%5cevil.example": (302, "/"),
    }


# --------------------------------------------------------------------------- enumeration

local_parts = st.text(
    alphabet=string.ascii_letters + string.digits + "_+-", min_size=1, max_size=24
)
emails = st.builds(
    lambda local, domain: f"{local}@{domain}",
    local_parts,
    st.sampled_from(["example.org", "Example.ORG", "ngo.example.net", "mail.example.com"]),
)


def _post(client, email: str, password: str):
    return client.post("/login", data={"email": email, "password": password})


@seeded(8)
@given(email=emails)
def test_unknown_wrong_and_inactive_get_the_same_answer(app, email):
    # Each example starts with no account for this email, in its own database state.
    db.session.execute(update(User).where(User.email == email.lower()).values(email=fresh_email()))
    db.session.commit()
    unknown = _post(app.test_client(), email, "some guess at a password")

    user = accounts.create_user(email, "Probe", DEFAULT_PASSWORD, accounts.role_by_name("viewer"))
    db.session.commit()
    wrong = _post(app.test_client(), email, "some guess at a password")

    user.active = False
    db.session.commit()
    inactive = _post(app.test_client(), email, DEFAULT_PASSWORD)

    assert unknown.status_code == wrong.status_code == inactive.status_code == 401
    assert unknown.data == wrong.data == inactive.data
    assert b"Wrong email or password." in unknown.data


@pytest.fixture
def kdf_calls(monkeypatch):
    """Counts calls of the password KDF check made while signing in."""
    calls = []
    real = passwords.check_password_hash

    def counting(stored, password):
        calls.append(stored.split("$", 1)[0])
        return real(stored, password)

    monkeypatch.setattr(passwords, "check_password_hash", counting)
    return calls


def test_every_kind_of_refusal_does_the_same_hashing_work(app, make_user, kdf_calls):
    known = make_user(role="viewer")
    inactive = make_user(role="viewer")
    inactive.active = False
    db.session.commit()
    cases = {
        "unknown": ("nobody-here@example.org", "some guess at a password"),
        "wrong password": (known.email, "some guess at a password"),
        "inactive": (inactive.email, DEFAULT_PASSWORD),
        "too long": (known.email, "x" * 10_000),
    }
    work = {}
    for name, (email, password) in cases.items():
        kdf_calls.clear()
        response = _post(from_address(app.test_client(), "10.1.0.1"), email, password)
        assert response.status_code == 401, name
        work[name] = list(kdf_calls)
    # One KDF check each, with the same method and parameters (scrypt:32768:8:1).
    assert all(len(calls) == 1 for calls in work.values()), work
    assert len({calls[0] for calls in work.values()}) == 1, work
    assert work["unknown"][0] == known.password_hash.split("$", 1)[0]


def test_a_throttled_answer_is_the_same_for_known_and_unknown_emails(app, make_user, kdf_calls):
    known = make_user(role="viewer")
    db.session.commit()
    answers, work = {}, {}
    for name, email in (("known", known.email), ("unknown", "nobody-here@example.org")):
        client = from_address(app.test_client(), "10.2.0.1")
        for _ in range(5):
            assert _post(client, email, "some guess at a password").status_code == 401
        kdf_calls.clear()
        answers[name] = _post(client, email, "some guess at a password")
        work[name] = len(kdf_calls)
    assert answers["known"].status_code == answers["unknown"].status_code == 429
    # The email is echoed in the form; the rest of the page is the same.
    known_page = answers["known"].data.replace(known.email.encode(), b"EMAIL")
    unknown_page = answers["unknown"].data.replace(b"nobody-here@example.org", b"EMAIL")
    assert known_page == unknown_page
    assert b"Too many sign-in attempts" in known_page
    # A throttled attempt checks no password at all, whoever it names: refusing it costs the
    # same for every email, and an attacker cannot make the server hash at a higher rate.
    assert work == {"known": 0, "unknown": 0}


# --------------------------------------------------------------------------- throttling


def test_failures_are_throttled_with_retry_after(app, make_user, passwords):
    user = make_user()
    db.session.commit()
    client = from_address(app.test_client(), "10.3.0.1")
    codes = [_post(client, user.email, "some guess at a password").status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    throttled = _post(client, user.email, passwords[user.email])  # even the right password
    assert throttled.status_code == 429
    wait = int(throttled.headers["Retry-After"])
    assert 0 < wait <= 15 * 60
    # Nothing slept: the answer came back at once (no thread held), and no lock was written.
    assert db.session.get(User, user.id).last_login_at is None


def test_another_address_cannot_lock_the_owner_out(app, make_user, passwords):
    victim = make_user()
    db.session.commit()
    attacker = from_address(app.test_client(), "203.0.113.66")
    for _ in range(20):
        _post(attacker, victim.email, "some guess at a password")
    assert _post(attacker, victim.email, "another guess").status_code == 429

    owner = from_address(app.test_client(), "198.51.100.7")
    response = _post(owner, victim.email, passwords[victim.email])
    assert response.status_code == 302


def test_a_right_password_clears_the_owners_typos(app, make_user, passwords):
    user = make_user()
    db.session.commit()
    client = from_address(app.test_client(), "10.4.0.1")
    for _ in range(4):
        assert _post(client, user.email, "a typo in the password").status_code == 401
    assert _post(client, user.email, passwords[user.email]).status_code == 302
    client.post("/logout")
    for _ in range(4):  # a fresh allowance, not one try left
        assert _post(client, user.email, "a typo in the password").status_code == 401


def test_one_address_trying_many_accounts_is_throttled(app):
    app.config["LOGIN_IP_LIMIT"] = "8 per 15 minutes"
    sprayer = from_address(app.test_client(), "192.0.2.10")
    codes = [_post(sprayer, f"spray{n}@example.org", "Summer2026!!").status_code for n in range(9)]
    assert codes == [401] * 8 + [429]
    assert int(_post(sprayer, "other@example.org", "x" * 12).headers["Retry-After"]) > 0
    elsewhere = from_address(app.test_client(), "192.0.2.11")
    assert _post(elsewhere, "spray1@example.org", "Summer2026!!").status_code == 401


def test_ipv6_addresses_of_one_allocation_share_a_count(app):
    app.config["LOGIN_IP_LIMIT"] = "3 per 15 minutes"
    codes = [
        _post(
            from_address(app.test_client(), f"2001:db8:1:2::{n:x}"), f"v6{n}@example.org", "guess"
        ).status_code
        for n in range(4)
    ]
    assert codes[-1] == 429
    other = from_address(app.test_client(), "2001:db8:1:3::1")
    assert _post(other, "v6x@example.org", "guess").status_code == 401


def test_the_throttle_keys_hold_no_email(app, make_user):
    from portal.accounts import throttle

    user = make_user()
    db.session.commit()
    _post(from_address(app.test_client(), "10.5.0.1"), user.email, "a guess")
    with app.test_request_context(environ_base={"REMOTE_ADDR": "10.5.0.1"}):
        _, ids = throttle._buckets(user.email)[0]
    assert user.email not in "".join(ids)
    assert "user" not in ids[1]


# --------------------------------------------------------------------------- password policy


@pytest.mark.parametrize(
    "weak",
    [
        "passwordpassword",
        "Password1234",
        "PASSWORD12345!",
        "qwertyuiop123",
        "123456789012",
        "iloveyou2026!",
        "aaaaaaaaaaaaaaaa",
        "abcabcabcabc",
        "dragondragondragon",
        "1qaz2wsx3edc",
        "football1234",
        "letmeinletmein",
    ],
)
def test_common_and_guessable_passwords_are_refused(app, weak):
    with pytest.raises(passwords.WeakPassword):
        passwords.check(weak)


@pytest.mark.parametrize(
    "strong",
    [DEFAULT_PASSWORD, "gravel tulip orbit canyon", "Kx9#mQ2$vL7@pR4", "सुनौलो बिहान हिमाल 42"],
)
def test_strong_passwords_pass(app, strong):
    passwords.check(strong)


def test_a_password_built_from_the_account_is_refused(app):
    passwords.check("sitagurung1984")
    with pytest.raises(passwords.WeakPassword):
        passwords.check("sitagurung1984", user_inputs=("sita.gurung@example.org", "Sita Gurung"))


def test_length_limits_are_clear(app):
    with pytest.raises(passwords.WeakPassword, match="at least 12"):
        passwords.check("Kx9#mQ2$vL7")
    with pytest.raises(passwords.WeakPassword, match="at most 256"):
        passwords.check("Kx9#mQ2$vL7@pR4 " * 17)
    passwords.check(("Kx9#mQ2$vL7@pR4 " * 16)[:256])


@seeded(40)
@given(password=st.text(min_size=0, max_size=400))
def test_the_policy_only_ever_refuses_with_a_message(app, password):
    try:
        passwords.check(password)
    except passwords.WeakPassword as exc:
        assert str(exc)


def test_the_bundled_common_list_is_zxcvbns_top_list(app):
    assert passwords.COMMON_FILE.read_text(encoding="utf-8").split() == (
        passwords.expected_common_list()
    )
    assert len(passwords.common_passwords()) == passwords.COMMON_COUNT


def test_every_place_a_password_is_set_applies_the_policy(app, client, make_user, login):
    admin = make_user()
    login(client, admin)
    response = client.post(
        "/users/new",
        data={
            "name": "New",
            "email": "new@example.org",
            "role_id": accounts.role_by_name("viewer").id,
            "password": "passwordpassword",
        },
    )
    assert response.status_code == 200
    assert b"most common passwords" in response.data
    assert db.session.scalar(select(User).where(User.email == "new@example.org")) is None

    response = client.post(
        "/account",
        data={"current": DEFAULT_PASSWORD, "new": "Password1234", "confirm": "Password1234"},
    )
    assert response.status_code == 200
    assert b"most common passwords" in response.data
    db.session.expire_all()
    assert passwords.verify(db.session.get(User, admin.id).password_hash, DEFAULT_PASSWORD)


def test_the_command_line_refuses_a_weak_password(app):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["create-user", "--email", "cli@example.org", "--password-stdin"],
        input="qwertyuiop123\n",
    )
    assert result.exit_code != 0
    assert "too easy to guess" in result.output or "most common" in result.output


def test_the_demo_admin_password_passes_the_policy(app):
    from portal.demo import ADMIN_EMAIL, _demo_password

    for _ in range(20):
        passwords.check(_demo_password(), user_inputs=(ADMIN_EMAIL, "Demo Admin"))


# --------------------------------------------------------------------------- sessions


def test_a_password_change_ends_the_other_sessions(app, make_user, login, monkeypatch):
    from portal import realtime

    closed = []
    monkeypatch.setattr(
        realtime,
        "evict",
        lambda room, ended: room.startswith("session:") and closed.append(int(room[8:])),
    )
    user = make_user()
    laptop, phone, tablet = app.test_client(), app.test_client(), app.test_client()
    for c in (laptop, phone, tablet):
        assert login(c, user).status_code == 302
    new = "gravel tulip orbit canyon"
    response = laptop.post(
        "/account", data={"current": DEFAULT_PASSWORD, "new": new, "confirm": new}
    )
    assert response.status_code == 302
    json = {"Accept": "application/json"}
    assert laptop.get("/account", headers=json).status_code == 200
    for other in (phone, tablet):
        assert other.get("/account").status_code == 302  # back to sign-in
    live = db.session.scalars(
        select(UserSession.id).where(
            UserSession.user_id == user.id, UserSession.revoked_at.is_(None)
        )
    ).all()
    assert len(live) == 1
    assert len(closed) == 2 and live[0] not in closed
    entry = db.session.scalar(
        select(AuditEntry).where(AuditEntry.action == "user.password_changed")
    )
    assert "2 other sessions ended" in entry.summary


def test_a_wrong_current_password_changes_nothing_and_is_throttled(app, client, make_user, login):
    user = make_user()
    login(client, user)
    for _ in range(5):
        response = client.post(
            "/account", data={"current": "not my password", "new": "x", "confirm": "x"}
        )
        assert response.status_code == 200
    response = client.post(
        "/account",
        data={"current": DEFAULT_PASSWORD, "new": "gravel tulip orbit canyon", "confirm": "x"},
    )
    # The form is refused (the repeat differs) before the throttle is reached.
    assert response.status_code == 200
    new = "gravel tulip orbit canyon"
    response = client.post(
        "/account", data={"current": DEFAULT_PASSWORD, "new": new, "confirm": new}
    )
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    db.session.expire_all()
    assert passwords.verify(db.session.get(User, user.id).password_hash, DEFAULT_PASSWORD)


def test_a_session_ends_at_its_absolute_lifetime_however_active(app, client, make_user, login):
    user = make_user()
    login(client, user)
    assert client.get("/account").status_code == 200
    absolute = app.config["SESSION_ABSOLUTE_SECONDS"]
    db.session.execute(
        update(UserSession).values(
            created_at=utcnow() - timedelta(seconds=absolute + 1), last_seen_at=utcnow()
        )
    )
    db.session.commit()
    assert client.get("/account").status_code == 302
    assert sessions.active_for(user.id) == []


def test_a_session_still_ends_when_idle(app, client, make_user, login):
    user = make_user()
    login(client, user)
    idle = app.config["PERMANENT_SESSION_LIFETIME"]
    db.session.execute(
        update(UserSession).values(last_seen_at=utcnow() - timedelta(seconds=idle + 1))
    )
    db.session.commit()
    assert client.get("/account").status_code == 302


def test_deactivating_a_user_closes_their_sockets(app, client, make_user, login, monkeypatch):
    from portal import realtime

    closed = []
    monkeypatch.setattr(realtime, "evict", lambda room, ended: closed.append((room, ended)))
    admin, other = make_user(), make_user(role="viewer")
    login(app.test_client(), other)
    login(client, admin)
    response = client.post(
        f"/users/{other.id}", data={"role_id": other.role_id}
    )  # "active" unticked
    assert response.status_code == 302
    # Its one session is ended and told; the user's room is closed for the change of access.
    ended = [room for room, told in closed if told]
    assert len(ended) == 1 and ended[0].startswith("session:")


# --------------------------------------------------------------------------- roles and members


def _role_form(role, permissions):
    return {"name": role.name, "description": role.description, "permissions": sorted(permissions)}


def test_an_empty_roles_form_for_the_admin_role_is_refused(app, client, make_user, login):
    admin = make_user()
    login(client, admin)
    role = admin.role
    before = role.permissions
    response = client.post(f"/roles/{role.id}", data={"name": role.name, "description": ""})
    assert response.status_code == 200
    assert b"lose this page" in response.data
    db.session.expire_all()
    assert db.session.get(type(role), role.id).permissions == before


def test_the_last_role_manager_cannot_be_stripped_by_another(app, client, make_user, login):
    # A second role that manages roles but only roles; the admin role's last holder is the
    # acting user's colleague.
    manager_role = accounts.save_role(
        None, "role keeper", "", {"role.manage", "user.manage", "project.read"}
    )
    keeper = make_user(role="role keeper")
    make_user()  # the one admin
    login(client, keeper)
    admin_role = accounts.role_by_name("admin")
    response = client.post(f"/roles/{admin_role.id}", data=_role_form(admin_role, {"project.read"}))
    assert response.status_code == 200
    assert b"could never be granted again" in response.data
    del manager_role


def test_no_permission_can_be_granted_beyond_ones_own(app, client, make_user, login):
    accounts.save_role(None, "role keeper", "", {"role.manage", "audit.read"})
    keeper = make_user(role="role keeper")
    make_user()  # an admin, so nothing else stops the change
    login(client, keeper)
    own = keeper.role
    for target, perms in (
        (own, {"role.manage", "audit.read", "user.manage"}),  # to themselves
        (accounts.role_by_name("viewer"), {"project.read", "beneficiary.pii.read"}),  # to others
    ):
        before = target.permissions
        response = client.post(f"/roles/{target.id}", data=_role_form(target, before | perms))
        assert response.status_code == 200
        assert b"only permissions you hold" in response.data
        db.session.expire_all()
        assert db.session.get(type(target), target.id).permissions == before
    response = client.post("/roles/new", data={"name": "sneaky", "permissions": ["job.retry"]})
    assert b"only permissions you hold" in response.data
    # Granting what they hold works.
    viewer = accounts.role_by_name("viewer")
    response = client.post(
        f"/roles/{viewer.id}", data=_role_form(viewer, viewer.permissions | {"audit.read"})
    )
    assert response.status_code == 302


@seeded(30)
@given(
    kept=st.sets(st.sampled_from(sorted(PERMISSIONS))),
    actor_role=st.sampled_from(["admin", "keeper"]),
)
def test_role_edits_never_leave_the_portal_without_administration(app, kept, actor_role):
    """Whatever an actor submits for the admin role, afterwards an active user can still
    manage roles and users and grant every permission an administrator could before."""
    if not db.session.scalar(select(User.id).where(User.email == "first-admin@example.org")):
        admin_role = accounts.role_by_name("admin")
        accounts.create_user("first-admin@example.org", "A", DEFAULT_PASSWORD, admin_role)
        accounts.save_role(None, "keeper", "", {"role.manage", "user.manage", "audit.read"})
        accounts.create_user(
            "keeper@example.org", "K", DEFAULT_PASSWORD, accounts.role_by_name("keeper")
        )
        db.session.commit()
    actor = db.session.scalar(
        select(User).where(
            User.email
            == ("first-admin@example.org" if actor_role == "admin" else "keeper@example.org")
        )
    )
    admin_role = accounts.role_by_name("admin")
    grantable_before = _grantable()
    try:
        accounts.save_role(admin_role, "admin", "", set(kept), actor=actor)
    except safeguards.Refused:
        db.session.rollback()
    assert {"role.manage", "user.manage"} <= _grantable()
    assert grantable_before <= _grantable()
    db.session.rollback()


def _grantable() -> set[str]:
    users = db.session.scalars(select(User).where(User.active.is_(True))).all()
    held = [u.role.permissions for u in users if u.can("role.manage")]
    return set().union(*held) if held else set()


def test_users_page_guards(app, client, make_user, login):
    admin = make_user()
    login(client, admin)
    assert client.get("/users").status_code == 200
    viewer = accounts.role_by_name("viewer")
    # Demoting or deactivating oneself would lose the page.
    response = client.post(f"/users/{admin.id}", data={"role_id": viewer.id, "active": "y"})
    assert response.status_code == 200 and b"lose this page" in response.data
    response = client.post(f"/users/{admin.id}", data={"role_id": admin.role_id})
    assert response.status_code == 200 and b"deactivate your own" in response.data
    db.session.expire_all()
    assert db.session.get(User, admin.id).role_id == admin.role_id


def test_a_user_manager_cannot_hand_out_a_bigger_role(app, client, make_user, login):
    accounts.save_role(None, "staff officer", "", {"user.manage", "project.read"})
    officer = make_user(role="staff officer")
    make_user()
    login(client, officer)
    admin_role = accounts.role_by_name("admin")
    response = client.post(f"/users/{officer.id}", data={"role_id": admin_role.id, "active": "y"})
    assert response.status_code == 200 and b"roles whose permissions you hold" in response.data
    response = client.post(
        "/users/new",
        data={
            "name": "Friend",
            "email": "friend@example.org",
            "role_id": admin_role.id,
            "password": "gravel tulip orbit canyon",
        },
    )
    assert response.status_code == 200 and b"roles whose permissions you hold" in response.data
    assert db.session.scalar(select(User).where(User.email == "friend@example.org")) is None


def test_the_last_admin_cannot_be_deactivated_by_another_user_manager(
    app, client, make_user, login
):
    accounts.save_role(None, "staff officer", "", {"user.manage"})
    officer = make_user(role="staff officer")
    admin = make_user()
    login(client, officer)
    response = client.post(f"/users/{admin.id}", data={"role_id": admin.role_id})
    assert response.status_code == 200
    assert b"no active user could manage roles" in response.data
    db.session.expire_all()
    assert db.session.get(User, admin.id).active


def test_an_empty_members_form_is_refused_and_nothing_is_removed(
    app, client, make_user, login, make_project
):
    manager = make_user(role="programme manager")
    colleague = make_user(role="field agent")
    project = make_project(creator=manager, members=[colleague])
    login(client, manager)
    response = client.post(f"/projects/{project.id}/members", data={})
    assert response.status_code == 400
    assert b"at least one member" in response.data
    db.session.expire_all()
    assert {m.user_id for m in projects.get_visible(manager, project.id).members} == {
        manager.id,
        colleague.id,
    }


def test_a_member_cannot_remove_themselves_from_the_page_they_are_on(
    app, client, make_user, login, make_project
):
    manager = make_user(role="programme manager")
    colleague = make_user(role="field agent")
    project = make_project(creator=manager, members=[colleague])
    login(client, manager)
    response = client.post(f"/projects/{project.id}/members", data={"members": [colleague.id]})
    assert response.status_code == 400 and b"lose access to this project" in response.data
    # Someone who sees every project may.
    admin = make_user()
    admin_client = app.test_client()
    login(admin_client, admin)
    response = admin_client.post(
        f"/projects/{project.id}/members", data={"members": [colleague.id]}
    )
    assert response.status_code == 302

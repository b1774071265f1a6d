"""Accounts: password rules, sign-in, and roles edited at runtime.

Throttling, redirects, the password policy and the role safeguards: test_signin_security.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.accounts import services as accounts
from portal.accounts.guards import permission_required
from portal.accounts.models import User
from portal.audit.models import AuditEntry
from portal.errors import Conflict, DomainError
from portal.extensions import db


def test_password_shorter_than_minimum_is_refused(app):
    with pytest.raises(DomainError, match=str(accounts.MIN_PASSWORD)):
        accounts.hash_password("Kx9#mQ2$vL7"[: accounts.MIN_PASSWORD - 1])
    assert accounts.hash_password("gravel tulip orbit canyon").startswith("scrypt:")


def test_create_user_refuses_short_password_and_writes_nothing(app):
    with pytest.raises(DomainError):
        accounts.create_user("a@example.org", "A", "short", accounts.role_by_name("viewer"))
    assert db.session.scalar(select(User).where(User.email == "a@example.org")) is None


def test_create_user_normalises_email_and_refuses_duplicates(make_user):
    user = make_user(email="  Mixed.Case@Example.ORG ")
    assert user.email == "mixed.case@example.org"
    with pytest.raises(Conflict):
        make_user(email="MIXED.CASE@example.org")


def test_authenticate_with_right_password(make_user, passwords):
    user = make_user()
    assert accounts.authenticate(user.email.upper(), passwords[user.email]) is user
    assert user.last_login_at is not None


def test_each_failure_is_in_the_audit_log_without_the_email(app, make_user):
    user = make_user()
    for email in (user.email, "nobody@example.org"):
        with pytest.raises(accounts.SignInFailed, match="Wrong email or password"):
            accounts.authenticate(email, "wrong password!!")
    summaries = db.session.scalars(
        select(AuditEntry.summary).where(AuditEntry.action == "auth.failed")
    ).all()
    assert summaries == [
        f"Failed sign-in for user {user.id}",
        "Failed sign-in for an email with no account",
    ]
    assert not any("nobody" in s for s in summaries)


def test_inactive_user_cannot_sign_in_even_with_right_password(make_user, passwords):
    user = make_user()
    user.active = False
    with pytest.raises(accounts.SignInFailed, match="Wrong email or password"):
        accounts.authenticate(user.email, passwords[user.email])


def test_unknown_email_gets_the_same_message_as_a_wrong_password(make_user):
    user = make_user()
    with pytest.raises(accounts.SignInFailed) as wrong_password:
        accounts.authenticate(user.email, "not the password")
    with pytest.raises(accounts.SignInFailed) as unknown_email:
        accounts.authenticate("nobody@example.org", "not the password")
    assert str(unknown_email.value) == str(wrong_password.value)


def test_save_role_refuses_unknown_permission_and_duplicate_name(app):
    with pytest.raises(DomainError, match="Unknown permissions"):
        accounts.save_role(None, "Odd", "", {"project.read", "rocket.launch"})
    with pytest.raises(Conflict):
        accounts.save_role(None, "ADMIN", "", {"project.read"})


def test_new_role_with_a_permission_grants_it(make_user):
    auditor = accounts.save_role(None, "auditor", "Reads the log", {"audit.read"})
    user = make_user(role="viewer")
    assert not user.can("audit.read")

    accounts.set_user_role(user, auditor, active=True)
    assert user.can("audit.read")
    assert not user.can("job.read")

    accounts.save_role(auditor, "auditor", "Reads the log and jobs", {"audit.read", "job.read"})
    assert user.can("job.read")

    accounts.save_role(auditor, "auditor", "Nothing now", set())
    assert not user.can("audit.read")


def test_role_edited_at_runtime_changes_access_to_a_route(app, client, make_user, login):
    @app.get("/_test/needs-audit")
    @permission_required("audit.read")
    def needs_audit():
        return "ok"

    role = accounts.save_role(None, "clerk", "", {"project.read"})
    user = make_user(role="clerk")
    response = login(client, user)
    assert response.status_code == 302, response.data

    json = {"Accept": "application/json"}  # error pages as JSON: no template needed
    assert client.get("/_test/needs-audit", headers=json).status_code == 403

    # An admin grants the permission in another request: the signed-in user has it at once.
    accounts.save_role(role, "clerk", "", {"project.read", "audit.read"})
    db.session.commit()
    response = client.get("/_test/needs-audit", headers=json)
    assert response.status_code == 200
    assert response.data == b"ok"


def test_anonymous_request_to_a_guarded_route_is_sent_to_sign_in(app, client):
    @app.get("/_test/guarded")
    @permission_required("audit.read")
    def guarded():
        return "ok"

    response = client.get("/_test/guarded")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_sign_in_form_refusal_is_audited_and_the_right_password_then_works(
    client, make_user, login
):
    user = make_user()
    response = login(client, user, password="wrong password!!")
    assert response.status_code == 401
    # The view commits the audit entry even though it refuses the sign-in.
    db.session.expire_all()
    assert db.session.scalar(select(AuditEntry).where(AuditEntry.action == "auth.failed"))

    response = login(client, user)
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).last_login_at is not None

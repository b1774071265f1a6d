"""Deactivating, reactivating and closing staff accounts, and the user's own activity page."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.accounts import lifecycle, safeguards
from portal.accounts import services as accounts
from portal.accounts.models import User, UserSession
from portal.audit import services as audit
from portal.audit.models import AuditEntry
from portal.errors import Conflict
from portal.extensions import db
from portal.twofactor.models import TwoFactorSecret


def test_deactivating_pauses_and_reactivating_resumes(app, client, make_user, login):
    admin, user = make_user("admin"), make_user("viewer")
    db.session.commit()
    accounts.set_user_role(user, user.role, False, actor=admin)
    db.session.commit()
    assert login(app.test_client(), user).status_code == 401
    accounts.set_user_role(user, user.role, True, actor=admin)
    db.session.commit()
    assert login(app.test_client(), user).status_code == 302


def test_closing_ends_sessions_and_sign_in_for_good(app, client, make_user, enrol, login):
    admin, user = make_user("admin"), make_user("finance")
    enrol(user)
    signed_in = app.test_client()
    login(signed_in, user)
    assert signed_in.get("/").status_code == 200
    login(client, admin)
    reply = client.post(f"/users/{user.id}/close")
    assert reply.status_code == 302
    db.session.expire_all()
    user = db.session.get(User, user.id)
    assert user.closed_at is not None and not user.active
    assert signed_in.get("/").status_code == 302  # the open session ended
    assert db.session.get(TwoFactorSecret, user.id) is None  # no secret outlives it
    live = db.session.scalars(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    ).all()
    assert live == []
    assert login(app.test_client(), user).status_code == 401
    # Kept for the trail, with its email: the address cannot be given to someone else.
    with pytest.raises(Conflict):
        accounts.create_user(user.email, "Someone Else", "correct horse battery staple", user.role)
    with pytest.raises(safeguards.Refused):
        accounts.set_user_role(user, user.role, True, actor=admin)
    with pytest.raises(Conflict):
        lifecycle.close_account(user, actor=admin)
    actions = [e.action for e in db.session.scalars(select(AuditEntry))]
    assert "user.closed" in actions


def test_nobody_closes_their_own_account_or_the_last_administrator(app, make_user):
    admin = make_user("admin")
    db.session.commit()
    with pytest.raises(safeguards.Refused):
        lifecycle.close_account(admin, actor=admin)
    with pytest.raises(safeguards.Refused):
        lifecycle.close_account(admin, actor=None)  # the only one who can administer


def test_closing_needs_user_manage(app, client, make_user, login):
    target, viewer = make_user("viewer"), make_user("viewer")
    login(client, viewer)
    assert client.post(f"/users/{target.id}/close").status_code == 403
    db.session.expire_all()
    assert db.session.get(User, target.id).closed_at is None


def test_your_activity_shows_your_entries_and_your_accounts_only(app, client, make_user, login):
    me, other = make_user("viewer"), make_user("viewer")
    db.session.commit()
    login(client, other)  # another user's sign-in
    client.post("/logout")
    bad = app.test_client()
    bad.post("/login", data={"email": me.email, "password": "not the password at all"})
    login(client, me)
    for n in range(60):
        audit.record("test.mine", f"Thing {n} done by me", actor_id=me.id, actor_label="x")
    audit.record("test.theirs", "Done by the other", actor_id=other.id, actor_label="x")
    db.session.commit()
    first = client.get("/account/activity").get_data(as_text=True)
    assert "Thing 59 done by me" in first and "Done by the other" not in first
    assert f"User “{other.name}” signed in" not in first
    assert "Page 1 of 2" in first
    second = client.get("/account/activity?page=2").get_data(as_text=True)
    # Written with ids, shown with names (portal/audit/names.py).
    assert f"Failed sign-in for user “{me.name}”" in second
    assert f"User “{me.name}” signed in" in second
    assert client.get("/account/activity?page=x").status_code in (200, 400)

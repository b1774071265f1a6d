"""Invitations, password recovery and the change of email, through the pages and the commands;
every emailed link read back from the (development) outbox."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.accounts import links
from portal.accounts.links import AccountLink
from portal.accounts.models import User, UserSession
from portal.audit.models import AuditEntry
from portal.comms.models import OutboxMessage
from portal.extensions import db
from portal.projects.models import ProjectMember

NEW_PASSWORD = "violet lantern orbit meadow"
LINK = re.compile(r"http://portal\.test/t/([A-Za-z0-9_-]+)")


def emails(purpose: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.channel == "email")
    if purpose:
        query = query.where(OutboxMessage.purpose == purpose)
    return list(db.session.scalars(query.order_by(OutboxMessage.id)))


def last_link(purpose: str) -> str:
    """The token of the newest email of ``purpose``."""
    return LINK.search(emails(purpose)[-1].body).group(1)


def follow(client, token: str):
    return client.get(f"/t/{token}")


# --- invitations -------------------------------------------------------------------------------


def test_an_admin_invites_and_the_invitee_chooses_a_password_and_is_signed_in(
    app, client, make_user, login, make_project, worker
):
    admin = make_user("admin")
    project = make_project(creator=admin)
    db.session.commit()
    login(client, admin)
    role_id = db.session.scalar(select(User.role_id).where(User.id == admin.id))
    answer = client.post(
        "/users/invitations/new",
        data={"email": "New.Person@Example.org", "role_id": role_id, "projects": [project.id]},
    )
    assert answer.status_code == 302
    (mail,) = emails("accounts.invitation")
    assert mail.recipient == "new.person@example.org" and mail.subject.startswith("You are invited")
    assert "admin" in mail.body and LINK.search(mail.html_body)
    listing = client.get("/users/invitations").get_data(as_text=True)
    assert "new.person@example.org" in listing

    invitee = app.test_client()
    token = last_link("accounts.invitation")
    landed = follow(invitee, token)
    assert landed.status_code == 302 and landed.headers["Location"].endswith("/invitation")
    assert landed.headers["Referrer-Policy"] == "no-referrer"
    page = invitee.get("/invitation")
    assert "new.person@example.org" in page.get_data(as_text=True)
    assert token not in page.get_data(as_text=True)

    weak = invitee.post(
        "/invitation", data={"name": "N", "password": "password1", "confirm": "password1"}
    )
    assert weak.status_code == 200 and "common" in weak.get_data(as_text=True).lower()
    done = invitee.post(
        "/invitation",
        data={"name": "Nima Person", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert done.status_code == 302
    assert invitee.get("/account").status_code == 200  # signed in
    user = db.session.scalar(select(User).where(User.email == "new.person@example.org"))
    assert user.name == "Nima Person" and user.role_id == role_id
    assert db.session.scalar(
        select(ProjectMember).where(
            ProjectMember.user_id == user.id, ProjectMember.project_id == project.id
        )
    )
    # Used once: the same link again, in another browser, leads nowhere.
    other = app.test_client()
    assert follow(other, token).status_code == 404
    assert "new.person@example.org" not in client.get("/users/invitations").get_data(as_text=True)
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"invitation.sent", "invitation.accepted", "user.created"} <= actions


def test_resend_replaces_the_link_and_revoke_ends_it(app, client, make_user, login):
    admin = make_user("admin")
    login(client, admin)
    client.post(
        "/users/invitations/new",
        data={"email": "late@example.org", "role_id": admin.role_id},
    )
    first = last_link("accounts.invitation")
    (invitation,) = db.session.scalars(select(AccountLink))
    assert client.post(f"/users/invitations/{invitation.id}/resend").status_code == 302
    second = last_link("accounts.invitation")
    assert first != second
    assert follow(app.test_client(), first).status_code == 404
    assert follow(app.test_client(), second).status_code == 302
    client.post(f"/users/invitations/{invitation.id}/revoke")
    assert follow(app.test_client(), second).status_code == 404


def test_an_invitation_to_an_existing_user_or_twice_is_refused(client, make_user, login):
    admin = make_user("admin")
    login(client, admin)
    taken = client.post(
        "/users/invitations/new", data={"email": admin.email, "role_id": admin.role_id}
    )
    assert "exists" in taken.get_data(as_text=True)
    client.post("/users/invitations/new", data={"email": "x@example.org", "role_id": admin.role_id})
    again = client.post(
        "/users/invitations/new", data={"email": "x@example.org", "role_id": admin.role_id}
    )
    assert "pending invitation" in again.get_data(as_text=True)
    assert len(emails("accounts.invitation")) == 1


def test_an_admin_cannot_invite_with_a_role_above_their_own(client, make_user, login):
    from portal.accounts.services import role_by_name

    manager = make_user("programme manager")
    manager.role.set_permissions(manager.role.permissions | {"user.manage"})
    db.session.commit()
    login(client, manager)
    answer = client.post(
        "/users/invitations/new",
        data={"email": "boss@example.org", "role_id": role_by_name("admin").id},
    )
    assert answer.status_code == 200 and not emails()


def test_the_invite_command_emails_and_prints_the_link(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["invite", "--email", "cli@example.org", "--role", "admin"])
    assert result.exit_code == 0, result.output
    printed = LINK.search(result.output).group(1)
    assert printed == last_link("accounts.invitation")
    refused = runner.invoke(args=["invite", "--email", "cli@example.org", "--role", "admin"])
    assert refused.exit_code != 0 and "pending invitation" in refused.output


def test_the_invite_command_names_projects(app, make_project):
    project = make_project()
    db.session.commit()
    runner = app.test_cli_runner()
    args = ["invite", "--email", "p@example.org", "--role", "field agent"]
    result = runner.invoke(args=[*args, "--project", str(project.id)])
    assert result.exit_code == 0, result.output
    invitation = db.session.scalar(select(AccountLink).where(AccountLink.email == "p@example.org"))
    assert invitation.projects == [project.id]
    missing = runner.invoke(
        args=["invite", "--email", "q@example.org", "--role", "field agent", "--project", "999"]
    )
    assert missing.exit_code != 0 and "no longer exists" in missing.output


# --- forgot and reset password -----------------------------------------------------------------


def test_forgot_password_emails_a_single_use_link_that_ends_every_session(
    app, client, make_user, login, passwords, worker
):
    user = make_user("programme manager")
    db.session.commit()
    elsewhere = app.test_client()
    login(elsewhere, user)
    assert elsewhere.get("/account").status_code == 200

    answer = client.post("/password/forgot", data={"email": user.email.upper()})
    assert answer.status_code == 200 and "Check your email" in answer.get_data(as_text=True)
    assert not emails()  # the lookup is the job's
    db.session.commit()
    worker.run("comms")
    token = last_link("accounts.password_reset")
    assert follow(client, token).headers["Location"].endswith("/password/reset")
    mismatch = client.post("/password/reset", data={"password": NEW_PASSWORD, "confirm": "x"})
    assert "differ" in mismatch.get_data(as_text=True)
    done = client.post("/password/reset", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")

    assert elsewhere.get("/account").status_code == 302  # its session ended
    assert not db.session.scalars(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
    ).all()
    (notice,) = emails("accounts.password_changed")
    assert notice.recipient == user.email and "reset" in notice.body
    assert login(app.test_client(), user, NEW_PASSWORD).status_code == 302
    assert follow(app.test_client(), token).status_code == 404


def test_forgot_password_for_an_unknown_address_sends_nothing(client, worker):
    answer = client.post("/password/forgot", data={"email": "nobody@example.org"})
    assert answer.status_code == 200 and "Check your email" in answer.get_data(as_text=True)
    db.session.commit()
    worker.run("comms")
    assert not emails()


def test_a_new_reset_link_replaces_the_older_one(app, client, make_user, worker):
    user = make_user()
    db.session.commit()
    for _ in range(2):
        client.post("/password/forgot", data={"email": user.email})
    db.session.commit()
    worker.run("comms")
    first, second = (LINK.search(m.body).group(1) for m in emails("accounts.password_reset"))
    assert follow(app.test_client(), first).status_code == 404
    assert follow(app.test_client(), second).status_code == 302


def test_a_weak_password_leaves_the_link_usable(app, client, make_user):
    from portal.accounts import recovery

    user = make_user()
    url = recovery.issue(user, send=False)
    db.session.commit()
    follow(client, url.rsplit("/", 1)[1])
    weak = client.post("/password/reset", data={"password": "password1", "confirm": "password1"})
    assert weak.status_code == 200 and "common" in weak.get_data(as_text=True).lower()
    ok = client.post("/password/reset", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert ok.status_code == 302


def test_an_admin_sends_a_reset_link(client, make_user, login):
    admin, user = make_user("admin"), make_user("viewer")
    login(client, admin)
    assert client.post(f"/users/{user.id}/send-reset").status_code == 302
    (mail,) = emails("accounts.password_reset")
    assert mail.recipient == user.email and "administrator" in mail.body


def test_the_reset_password_command_prints_a_link_and_emails_nothing(app, make_user):
    user = make_user()
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["reset-password", "--email", user.email])
    assert result.exit_code == 0, result.output
    token = LINK.search(result.output).group(1)
    assert links.find(token, links.PASSWORD_RESET) is not None
    assert not emails()
    unknown = app.test_cli_runner().invoke(args=["reset-password", "--email", "x@example.org"])
    assert unknown.exit_code != 0


def test_changing_the_password_on_the_account_page_is_notified(client, make_user, login, passwords):
    user = make_user()
    login(client, user)
    answer = client.post(
        "/account",
        data={"current": passwords[user.email], "new": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert answer.status_code == 302
    (notice,) = emails("accounts.password_changed")
    assert notice.recipient == user.email and "changed" in notice.subject


# --- change of email ---------------------------------------------------------------------------


def test_an_email_change_is_confirmed_from_the_new_address_and_undone_from_the_old(
    app, client, make_user, login, passwords
):
    user = make_user(email="old@example.org")
    login(client, user)
    wrong = client.post(
        "/account/email", data={"email": "new@example.org", "password": "not it at all"}
    )
    assert "current password" in wrong.get_data(as_text=True) and not emails()
    asked = client.post(
        "/account/email", data={"email": "New@Example.org", "password": passwords[user.email]}
    )
    assert asked.status_code == 302
    (confirm_mail,) = emails("accounts.email_change")
    assert confirm_mail.recipient == "new@example.org"
    assert db.session.get(User, user.id).email == "old@example.org"  # not until confirmed

    follow(client, last_link("accounts.email_change"))
    assert "new@example.org" in client.get("/account/email/confirm").get_data(as_text=True)
    assert client.post("/account/email/confirm").status_code == 302
    assert db.session.get(User, user.id).email == "new@example.org"
    (notice,) = emails("accounts.email_changed")
    assert notice.recipient == "old@example.org" and "new@example.org" in notice.body

    thief_browser = client
    owner = app.test_client()
    follow(owner, last_link("accounts.email_changed"))
    assert owner.post("/account/email/undo").status_code == 302
    user = db.session.get(User, user.id)
    assert user.email == "old@example.org"
    assert thief_browser.get("/account").status_code == 302  # every session ended
    reset = emails("accounts.password_reset")[-1]
    assert reset.recipient == "old@example.org"


def test_an_email_in_use_cannot_be_taken(client, make_user, login, passwords):
    user, other = make_user(), make_user()
    login(client, user)
    answer = client.post(
        "/account/email", data={"email": other.email, "password": passwords[user.email]}
    )
    assert "Another account" in answer.get_data(as_text=True) and not emails()


@pytest.mark.parametrize("path", ["/invitation", "/password/reset", "/account/email/confirm"])
def test_the_link_pages_without_a_link_say_it_does_not_work(client, path):
    for method in ("get", "post"):
        answer = getattr(client, method)(path)
        assert answer.status_code == 404
        assert "does not work" in answer.get_data(as_text=True)


def test_the_web_log_hides_link_tokens():
    from portal.serving import redact_request_line

    line = "GET /t/AbC-123_xyz HTTP/1.1"
    assert redact_request_line(line) == "GET /t/[token] HTTP/1.1"
    assert redact_request_line("GET /tasks/12 HTTP/1.1") == "GET /tasks/12 HTTP/1.1"

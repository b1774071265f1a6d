"""Staff identity by email in a real browser, against a real SMTP server (STARTTLS and login):
an admin invites; the invitation arrives; the invitee chooses a password and is taken to set up
two-factor sign-in (the test computes the code from the key the page shows); signs out and in
with a code; signs in with a recovery code; forgets the password and resets it from the emailed
link; their sessions in other browsers are gone. Screenshots of the new pages at desktop width
and at 375 px."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support import stack, staff_browser, twofactor
from tests.support.smtp import SmtpServer

pytestmark = pytest.mark.browser

INVITEE = "mina.rai@example.org"
FIRST_PASSWORD = "amber kettle river lantern"
NEW_PASSWORD = "copper meadow violet orbit"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


@pytest.fixture(scope="module")
def mail_portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    """The web and worker processes, emailing through the test's own SMTP server."""
    folder = tmp_path_factory.mktemp("identity-mail")
    smtp = SmtpServer(folder, security="starttls", login=("portal", "smtp-secret")).start()
    port = stack.free_port()
    env = stack.portal_env(
        database_url=sqlite_factory(),
        redis_url=redis_db.url,
        instance_dir=folder / "instance",
        secrets=portal_secrets,
        SOCKETIO_CHANNEL=f"portal-browser-{secrets.token_hex(4)}",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        **smtp.settings,
    )
    email, password = f"admin-{secrets.token_hex(4)}@example.org", "a-long-browser-password-7"
    stack.create_user(env, email, password, role="admin")
    web = stack.WebServer(env, folder, port=port)
    worker = stack.Worker(env, folder, processes=1, threads=2)
    try:
        web.start()
        worker.start()
        web.wait_ready()
        worker.wait_ready()
        yield {
            "base": web.base_url,
            "email": email,
            "password": password,
            "smtp": smtp,
            "logs": [Path(folder) / f"web-{port}.log", Path(folder) / "worker.log"],
        }
    finally:
        worker.stop()
        web.stop()
        smtp.stop()


def sign_in(page, base: str, email: str, password: str):
    """The password, then the code the invitee's app shows once they have set it up."""
    staff_browser.sign_in(page, base, email, password)


def password_step(page, base: str, email: str, password: str):
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your code")


def link_in(mail) -> str:
    return re.search(r"http://127\.0\.0\.1:\d+/t/[A-Za-z0-9_-]+", mail.text).group(0)


# A step that hashes a password, signs in or sends mail: on a loaded CI host (two suite processes,
# SQLite shared by the web and worker processes) it has taken longer than Playwright's 5 s.
POST_WAIT_MS = 20_000


def email_to(smtp: SmtpServer, subject: str, timeout: float = 20):
    """The latest email with this subject, once one has arrived: other emails (a new sign-in's
    notice) may arrive before or after it, in any order."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [mail for mail in list(smtp.inbox) if mail.subject == subject]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no email {subject!r} among {[m.subject for m in smtp.inbox]}")


def test_invite_accept_forget_and_reset(chromium, mail_portal, shots):
    base, smtp = mail_portal["base"], mail_portal["smtp"]
    admin = chromium.new_context(viewport=DESKTOP).new_page()
    sign_in(admin, base, mail_portal["email"], mail_portal["password"])

    # The admin invites: the newcomer's password never passes through the admin.
    admin.goto(f"{base}/users")
    admin.get_by_role("link", name="Invite a user").click()
    admin.get_by_label("Email").fill(INVITEE)
    admin.get_by_label("Role").select_option(label="programme manager")
    admin.screenshot(path=str(shots / "invite-form.png"), full_page=True)
    admin.get_by_role("button", name="Send the invitation").click()
    expect(admin.locator(".flash--success")).to_contain_text(
        "Invitation sent", timeout=POST_WAIT_MS
    )
    expect(admin.locator("tbody")).to_contain_text(INVITEE)
    admin.screenshot(path=str(shots / "invitations.png"), full_page=True)

    invitation = email_to(smtp, "You are invited to the aid distribution portal")
    assert invitation.recipients == [INVITEE] and invitation.tls and invitation.login == "portal"
    link = link_in(invitation)
    assert f'href="{link}"' in invitation.html

    # The link at 375 px (following it does not use it up).
    phone = chromium.new_context(viewport=PHONE).new_page()
    phone.goto(link)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Welcome to the portal")
    assert "/t/" not in phone.url
    phone.screenshot(path=str(shots / "invitation-375.png"), full_page=True)

    browser_a = chromium.new_context(viewport=DESKTOP)
    invitee = browser_a.new_page()
    invitee.goto(link)
    expect(invitee.locator("main")).to_contain_text(INVITEE)
    invitee.screenshot(path=str(shots / "invitation.png"), full_page=True)
    invitee.get_by_label("Your name").fill("Mina Rai")
    invitee.get_by_label("Choose a password").fill(FIRST_PASSWORD)
    invitee.get_by_label("Repeat the password").fill(FIRST_PASSWORD)
    invitee.get_by_role("button", name="Create my account").click()

    # A programme manager reads personal data: two-factor sign-in is set up right away.
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Set up two-factor sign-in")
    expect(invitee.locator(".who__name")).to_have_text("Mina Rai")
    invitee.get_by_role("button", name="Begin").click()
    expect(invitee.locator(".qr img")).to_be_visible()
    secret = invitee.locator("[data-secret]").inner_text().replace(" ", "")
    twofactor.register(INVITEE, secret, 0)
    invitee.get_by_label("Code from the app").fill(twofactor.code(secret))
    invitee.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(invitee.get_by_role("heading", level=1)).to_have_text(
        "Two-factor sign-in is on", timeout=POST_WAIT_MS
    )
    recovery_codes = invitee.locator("[data-recovery-codes] li").all_inner_texts()
    assert len(recovery_codes) == 10
    invitee.get_by_role("link", name="I have kept them").click()
    invitee.get_by_role("button", name="Sign out").click()
    expect(invitee.get_by_role("heading", level=1)).to_have_text("Sign in")

    # Signing in asks for the code after the password.
    sign_in(invitee, base, INVITEE, FIRST_PASSWORD)
    invitee.get_by_role("button", name="Sign out").click()

    # Another browser of theirs signs in with a recovery code (its phone left at home).
    other = chromium.new_context(viewport=DESKTOP).new_page()
    password_step(other, base, INVITEE, FIRST_PASSWORD)
    other.get_by_label("Code", exact=True).fill(recovery_codes[0])
    other.get_by_role("button", name="Verify").click()
    expect(other.get_by_role("heading", level=1)).to_contain_text(
        "Good to see you", timeout=POST_WAIT_MS
    )
    expect(other.locator(".flash--info")).to_contain_text("9 left")
    # And a third one with a code from the app.
    third = chromium.new_context(viewport=DESKTOP).new_page()
    sign_in(third, base, INVITEE, FIRST_PASSWORD)

    # Forgotten: the link on the sign-in page, the same answer for any address.
    invitee.get_by_role("link", name="Forgot password?").click()
    invitee.get_by_label("Email").fill(INVITEE.upper())
    invitee.screenshot(path=str(shots / "forgot.png"), full_page=True)
    invitee.get_by_role("button", name="Send me a link").click()
    expect(invitee.get_by_role("heading", level=1)).to_have_text(
        "Check your email", timeout=POST_WAIT_MS
    )
    invitee.screenshot(path=str(shots / "forgot-sent.png"), full_page=True)
    phone.goto(f"{base}/password/forgot")
    phone.screenshot(path=str(shots / "forgot-375.png"), full_page=True)

    reset = email_to(smtp, "Reset your portal password")
    assert reset.recipients == [INVITEE]
    reset_link = link_in(reset)
    phone.goto(reset_link)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    phone.screenshot(path=str(shots / "reset-375.png"), full_page=True)
    invitee.goto(reset_link)
    invitee.screenshot(path=str(shots / "reset.png"), full_page=True)
    invitee.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    invitee.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    invitee.get_by_role("button", name="Save the new password").click()
    expect(invitee.locator(".flash--success")).to_contain_text(
        "every session signed out", timeout=POST_WAIT_MS
    )

    notice = email_to(smtp, "Your portal password was changed")
    assert notice.recipients == [INVITEE] and "reset" in notice.text

    # The other browsers' sessions are gone; the old password no longer works; the new one does.
    for old_session in (other, third):
        old_session.goto(f"{base}/account")
        expect(old_session.get_by_role("heading", level=1)).to_have_text("Sign in")
    invitee.get_by_label("Email").fill(INVITEE)
    invitee.get_by_label("Password").fill(FIRST_PASSWORD)
    invitee.get_by_role("button", name="Sign in").click()
    expect(invitee.locator(".field--error")).to_contain_text(
        "Wrong email or password", timeout=POST_WAIT_MS
    )
    sign_in(invitee, base, INVITEE, NEW_PASSWORD)

    # The reset link worked once.
    phone.goto(reset_link)
    expect(phone.get_by_role("heading", level=1)).to_have_text("This link does not work")

    # The new pages of the account and the admin side at 375 px.
    mobile = chromium.new_context(viewport=PHONE).new_page()
    sign_in(mobile, base, INVITEE, NEW_PASSWORD)
    mobile.goto(f"{base}/account/email")
    mobile.screenshot(path=str(shots / "email-change-375.png"), full_page=True)
    invitee.goto(f"{base}/account/email")
    invitee.screenshot(path=str(shots / "email-change.png"), full_page=True)
    admin.set_viewport_size(PHONE)
    admin.goto(f"{base}/users/invitations/new")
    admin.screenshot(path=str(shots / "invite-form-375.png"), full_page=True)
    admin.goto(f"{base}/users")
    admin.screenshot(path=str(shots / "users-375.png"), full_page=True)

    # No process wrote a token to its log.
    logs = "".join(path.read_text(errors="replace") for path in mail_portal["logs"])
    assert "GET /t/[token]" in logs  # the request was logged, its token hidden
    for token in (link, reset_link):
        assert token.rsplit("/", 1)[1] not in logs

"""Two-factor in a real browser: an administrator (enrolled, signing in with a code) adds a
finance user; the user sets up TOTP from the page (the test computes the code from the key the
page shows), signs out and in with a code, signs in with a recovery code, and that recovery code
is refused the second time. Screenshots at desktop and phone widths."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support import staff_browser, twofactor

pytestmark = pytest.mark.browser

EMAIL = "tara.finance@example.org"
PASSWORD = "a-long-finance-password-83"


def _sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")


def _password_step(page, base: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your code")


def test_enrol_sign_in_with_code_and_recovery_code(chromium, live_portal, shots):
    base = live_portal["base"]
    admin_ctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    admin = admin_ctx.new_page()
    staff_browser.sign_in_to(admin, live_portal)  # the admin's own code step
    admin.goto(f"{base}/users/new")
    admin.get_by_label("Name").fill("Tara Finance")
    admin.get_by_label("Email").fill(EMAIL)
    admin.get_by_label("Role").select_option(label="finance")
    admin.get_by_label("Initial password").fill(PASSWORD)
    admin.get_by_role("button", name="Save").click()
    expect(admin.locator(".flash--success")).to_contain_text("can now sign in")

    ctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    # First sign-in: a finance role needs two-factor, and has a grace period to set it up.
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".two-factor-due")).to_contain_text("requires two-factor")
    page.locator(".two-factor-due").get_by_role("link", name="set it up").click()
    page.get_by_role("button", name="Begin").click()
    expect(page.locator(".qr img")).to_be_visible()
    page.screenshot(path=str(shots / "two-factor-setup-1280.png"), full_page=True)
    secret = page.locator("[data-secret]").inner_text().replace(" ", "")
    twofactor.register(EMAIL, secret, 0)
    page.get_by_label("Code from the app").fill(twofactor.code(secret))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Two-factor sign-in is on")
    codes = page.locator("[data-recovery-codes] li").all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    page.screenshot(path=str(shots / "two-factor-recovery-codes-1280.png"), full_page=True)
    page.get_by_role("link", name="I have kept them").click()
    expect(page.locator(".facts")).to_contain_text("on")
    _sign_out(page)

    # Signing in now asks for the code after the password; a wrong one is refused.
    _password_step(page, base)
    page.get_by_label("Code", exact=True).fill("12345x")
    page.get_by_role("button", name="Verify").click()
    expect(page.locator(".field--error")).to_contain_text("not right")
    page.screenshot(path=str(shots / "two-factor-code-1280.png"), full_page=True)
    page.get_by_label("Code", exact=True).fill(twofactor.code(secret))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Good to see you")
    _sign_out(page)

    # A recovery code signs in once (on a phone, 375 px wide) ...
    phone_ctx = chromium.new_context(viewport={"width": 375, "height": 800}, is_mobile=True)
    phone = phone_ctx.new_page()
    _password_step(phone, base)
    phone.screenshot(path=str(shots / "two-factor-code-375.png"), full_page=True)
    phone.get_by_label("Code", exact=True).fill(codes[0])
    phone.get_by_role("button", name="Verify").click()
    expect(phone.get_by_role("heading", level=1)).to_contain_text("Good to see you")
    expect(phone.locator(".flash--info")).to_contain_text("9 left")
    phone.goto(f"{base}/account")
    phone.screenshot(path=str(shots / "account-375.png"), full_page=True)
    phone.goto(f"{base}/account/activity")
    expect(phone.locator("table")).to_contain_text("recovery code")
    phone.screenshot(path=str(shots / "activity-375.png"), full_page=True)
    phone.goto(f"{base}/account/two-factor")
    phone.screenshot(path=str(shots / "two-factor-manage-375.png"), full_page=True)
    phone.locator("header").get_by_role("button", name="Sign out").click()

    # ... and is refused the second time.
    _password_step(phone, base)
    phone.get_by_label("Code", exact=True).fill(codes[0])
    phone.get_by_role("button", name="Verify").click()
    expect(phone.locator(".field--error")).to_contain_text("used already")
    expect(phone.get_by_role("heading", level=1)).to_have_text("Enter your code")

    page.goto(f"{base}/account/activity")
    expect(page).to_have_url(re.compile(r"/login"))  # signed out above: nothing without a sign-in

    # The administrator sees two-factor on, and may reset it (not their own).
    admin.goto(f"{base}/users")
    admin.get_by_role("link", name="Tara Finance").click()
    expect(admin.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    admin.screenshot(path=str(shots / "user-two-factor-1280.png"), full_page=True)
    for context in (admin_ctx, ctx, phone_ctx):
        context.close()

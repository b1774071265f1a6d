"""Signing staff in from a real browser (Playwright), with the code step when the portal asks."""

from __future__ import annotations

from tests.support import twofactor


def sign_in(page, base: str, email: str, password: str, *, home: bool = True) -> None:
    """Through the sign-in form, then the code page for an enrolled user (the code their app
    would show now). ``home``: wait for the home page's greeting, in whichever language the
    user chose."""
    from playwright.sync_api import expect

    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/login" not in url or "/login/two-factor" in url)
    if "/login/two-factor" in page.url:
        secret = twofactor.secret_for(email)
        assert secret, f"{email} is asked for a code but was not enrolled by this test run"
        page.get_by_label("Code", exact=True).fill(twofactor.code(secret))
        page.get_by_role("button", name="Verify").click()
    if home:
        expect(page.locator("h1#greeting")).to_be_visible()


def sign_in_to(page, portal: dict, *, home: bool = True) -> None:
    """The staff user of a stack fixture (``base``, ``email``, ``password``)."""
    sign_in(page, portal["base"], portal["email"], portal["password"], home=home)

"""Forms that start work take one click (static/js/once.js): a double click sends one request, a
cancelled confirmation leaves the form usable."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_staff_flow import sign_in

pytestmark = pytest.mark.browser


# Two clicks on the button of a work-starting form, the page kept from leaving (a listener added
# after once.js's cancels the navigation, once once.js has seen the submit): how many submits went.
TWO_CLICKS = """() => {
    document.addEventListener("submit", (event) => event.preventDefault());
    const form = document.querySelector("form[action$='/jobs/diagnostic']");
    const button = form.querySelector("button[type=submit]");
    let sent = 0;
    form.addEventListener("submit", () => { sent += 1; });
    button.click();
    button.click();
    return {sent: sent, disabled: button.disabled, busy: form.getAttribute("aria-busy")};
}"""


def test_a_second_click_sends_nothing(chromium, live_portal):
    base = live_portal["base"]
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, live_portal)
    page.goto(f"{base}/jobs/")
    page.get_by_text("Run a pipeline check").click()
    assert page.evaluate(TWO_CLICKS) == {"sent": 1, "disabled": True, "busy": "true"}
    # And for real: one click queues one check.
    page.goto(f"{base}/jobs/")
    page.get_by_text("Run a pipeline check").click()
    page.get_by_role("button", name="Queue the check").click()
    expect(page.locator(".flash--success")).to_contain_text("Pipeline check queued as job")
    context.close()


def test_a_cancelled_confirmation_leaves_the_form_usable(chromium, live_portal):
    base = live_portal["base"]
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, live_portal)
    page.goto(f"{base}/projects/new")
    page.get_by_label("Name").fill("Once project")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Once project")

    answers = iter([False, True])
    page.on("dialog", lambda d: d.accept() if next(answers) else d.dismiss())
    change = page.get_by_role("button", name="Activate the project")
    change.click()  # dismissed: nothing is sent, the button stays usable
    expect(change).to_be_enabled()
    change.click()  # accepted this time
    expect(page.locator(".flash--success")).to_contain_text("Project is now active")
    context.close()

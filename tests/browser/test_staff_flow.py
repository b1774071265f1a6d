"""A staff member's day in a real browser: sign in, create a project, enrol a beneficiary, run a
job that fails, retry it, and watch another tab's Jobs list change without reloading."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support import staff_browser

pytestmark = pytest.mark.browser


def sign_in(page, portal):
    staff_browser.sign_in_to(page, portal)  # with the code step: the admin is enrolled


def test_project_beneficiary_and_live_job_retry(chromium, live_portal, shots):
    base = live_portal["base"]
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, live_portal)

    # A project, created from the UI.
    page.goto(f"{base}/projects/new")
    page.get_by_label("Name").fill("Monsoon response")
    page.get_by_label("Type").select_option("cash")
    page.get_by_label("Area").fill("Saptari")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Monsoon response")
    expect(page.locator(".flash--success")).to_contain_text("created as a draft")
    project_id = int(re.search(r"/projects/(\d+)", page.url).group(1))

    # A bad phone number re-renders the form with the error and keeps what was typed.
    page.goto(f"{base}/beneficiaries/new?project={project_id}")
    page.get_by_label("Full name").fill("Sunita Chaudhary")
    page.get_by_label("Phone number").fill("12345")
    page.get_by_role("button", name="Enrol").click()
    expect(page.locator(".field--error .error")).to_contain_text("Not a valid phone number")
    expect(page.get_by_label("Full name")).to_have_value("Sunita Chaudhary")
    page.get_by_label("Phone number").fill("9841234567")
    page.get_by_role("button", name="Enrol").click()
    expect(page.locator(".flash--success")).to_contain_text("enrolled")
    expect(page.locator(".facts").first).to_contain_text("+9779841234567")
    expect(page.locator("main")).to_contain_text("Monsoon response")
    page.screenshot(path=str(shots / "beneficiary.png"), full_page=True)

    # Exact search by the phone written another way finds her.
    page.goto(f"{base}/beneficiaries/?q=%2B977+984-123-4567")
    expect(page.locator("tbody tr")).to_have_count(1)

    # A pipeline check told to fail once: it ends failed (dead letter, one attempt allowed).
    page.goto(f"{base}/jobs/")
    page.get_by_text("Run a pipeline check").click()
    page.get_by_label("Fail the first tries").fill("1")
    page.get_by_role("button", name="Queue the check").click()
    expect(page.locator("#job-detail [data-status]")).to_have_text("failed", timeout=20_000)
    # A sentence for people, live; the program's own error behind "Technical details".
    expect(page.locator('[data-field="problem"]')).not_to_have_text("Nothing.")
    expect(page.locator('[data-field="problem"]')).not_to_contain_text("Traceback")
    page.reload()
    expect(page.locator("pre.error-box").first).to_contain_text("Failing on purpose")
    job_id = int(re.search(r"/jobs/(\d+)", page.url).group(1))

    # A second tab watches the Jobs list; it must change without a reload.
    watcher = context.new_page()
    watcher.goto(f"{base}/jobs/")
    row = watcher.locator(f'tr[data-job-id="{job_id}"]')
    expect(row.locator("[data-status]")).to_have_text("failed")
    expect(watcher.locator("#live-dot")).to_have_attribute("data-state", "on", timeout=10_000)
    watcher.evaluate("window.__notReloaded = true")

    page.get_by_role("button", name="Retry").click()
    expect(page.locator(".flash--success")).to_contain_text(f"Job {job_id} is queued again")
    expect(page.locator("#job-detail [data-status]")).to_have_text("succeeded", timeout=20_000)

    expect(row.locator("[data-status]")).to_have_text("succeeded", timeout=20_000)
    assert watcher.evaluate("window.__notReloaded === true"), "the Jobs list was reloaded"
    expect(row.locator('form[data-action="retry"]')).to_be_hidden()
    expect(watcher.locator('[data-count="failed"]')).to_have_text("0", timeout=5_000)
    watcher.screenshot(path=str(shots / "jobs-live.png"), full_page=True)
    page.screenshot(path=str(shots / "job-detail.png"), full_page=True)
    context.close()


def test_phone_layout_keeps_pages_usable(chromium, live_portal, shots):
    """At 375 px the menu folds, tables scroll inside their box and nothing widens the page."""
    context = chromium.new_context(viewport={"width": 375, "height": 800}, is_mobile=True)
    page = context.new_page()
    sign_in(page, live_portal)
    for path in ("/", "/projects/", "/beneficiaries/", "/jobs/", "/vendors/", "/audit/"):
        page.goto(live_portal["base"] + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} is {width}px wide on a 375px screen"
        page.screenshot(path=str(shots / f"phone{path.replace('/', '_')}.png"), full_page=True)
    page.goto(live_portal["base"] + "/")
    jobs_link = page.locator("nav.nav").get_by_role("link", name="Jobs", exact=True)
    expect(jobs_link).to_be_hidden()
    page.get_by_text("Menu").click()
    expect(jobs_link).to_be_visible()
    context.close()

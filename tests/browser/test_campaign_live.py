"""A campaign composed in a real browser and watched live to the end, at 1366 px and on a
375 px phone: the composer's preview per language, then the campaign page whose counts follow
the messages as the local SMS provider takes them (at 3 a second) and its signed delivery
receipts come back, until every one is delivered and the campaign is finished. The person who
said STOP is counted and skipped. Screenshots go to ARTIFACTS_DIR."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support import campaign_run, staff_browser
from tests.support.comms_provider import FakeProviders

pytestmark = pytest.mark.browser
PEOPLE = 18
PUBLIC = "http://portal.example"  # what the provider is told; receipts go to the real address
EN = "Food distribution on Friday at the school, from 9. Bring your card."
NE = "शुक्रबार बिहान ९ बजेदेखि विद्यालयमा खाद्यान्न वितरण। कार्ड ल्याउनुहोस्।"


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    from portal.extensions import db
    from tests.support import stack

    folder = tmp_path_factory.mktemp("campaign-stack")
    with FakeProviders() as provider:
        provider.receipt_delay = 0.4
        with stack.served_portal(
            database_url=sqlite_factory(),
            redis_url=redis_db.url,
            secrets=portal_secrets,
            folder=folder,
            name="campaigns",
            OUTBOUND_PRIVATE_HOSTS="127.0.0.1",
            PUBLIC_BASE_URL=PUBLIC,
            SMS_RATE_PER_SECOND="3",
            CAMPAIGN_WATCH_SECONDS="2",
            **provider.sms_settings(),
        ) as served:
            provider.deliver_to = served["base"]
            with served["app"].app_context():
                served["project"] = prepare()
                db.session.remove()
            served["provider"] = provider
            yield served


def prepare() -> str:
    from portal.accounts import services as accounts
    from portal.campaigns import optout
    from portal.extensions import db
    from portal.projects import services as projects

    user = accounts.create_user(
        "campaign-prep@example.org",
        "Prep",
        "a-long-prep-password-91",
        accounts.role_by_name("admin"),
    )
    project = projects.create({"name": "Flood relief", "type": "cva"}, user)
    projects.change_status(project, "active")
    db.session.commit()
    numbers = campaign_run.seed_people(project.id, PEOPLE + 1, start=500)
    optout.handle(numbers[-1], "STOP")
    db.session.commit()
    return project.name


def test_a_campaign_is_composed_and_watched_live_to_the_end(chromium, portal, shots):
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    staff_browser.sign_in_to(page, portal)
    page.goto(f"{portal['base']}/campaigns/new")
    page.get_by_label("Name").fill("Friday distribution")
    page.get_by_label("Project", exact=True).select_option(label=portal["project"])
    page.get_by_label("Text in English (required)").fill(EN)
    page.get_by_label("Text in नेपाली (Nepali)").fill(NE)
    page.get_by_role("button", name="Preview").click()
    expect(page.locator('[data-preview="en"]')).to_contain_text("GSM-7 · 1 SMS")
    expect(page.locator('[data-preview="ne"]')).to_contain_text(
        "71 characters · UCS-2 · 2 SMS segments"
    )
    page.screenshot(path=str(shots / "campaign-compose-1366.png"), full_page=True)
    page.get_by_role("button", name="Save campaign").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Friday distribution")
    expect(page.locator("dl.facts")).to_contain_text(f"{PEOPLE} people")
    expect(page.locator("dl.facts")).to_contain_text("1 said STOP")

    phone = chromium.new_context(viewport={"width": 375, "height": 812}, is_mobile=True)
    small = phone.new_page()
    staff_browser.sign_in_to(small, portal)
    small.goto(page.url)

    page.get_by_role("button", name="Send").click()
    counts = page.locator("#campaign-counts")
    # Live: the counts move while the page stays where it is (no reload).
    expect(counts.locator('[data-count="sent"], [data-count="delivered"]').last).not_to_have_text(
        "0", timeout=30_000
    )
    expect(page.locator("#campaign-summary")).to_contain_text(re.compile(r"\d+ of 18"))
    page.screenshot(path=str(shots / "campaign-live-mid-1366.png"), full_page=True)
    small.screenshot(path=str(shots / "campaign-live-mid-375.png"), full_page=True)

    for view in (page, small):
        expect(view.locator('#campaign-counts [data-count="delivered"]')).to_have_text(
            str(PEOPLE), timeout=60_000
        )
        expect(view.locator('[data-field="status"] .badge')).to_have_text(
            "Finished", timeout=30_000
        )
        expect(view.locator('#campaign-counts [data-count="opted_out"]')).to_have_text("1")
        expect(view.locator('#campaign-counts [data-count="queued"]')).to_have_text("0")
        # The page opened before sending now offers nothing that no longer applies.
        expect(view.get_by_role("button", name="Cancel campaign")).to_be_hidden()
        expect(view.get_by_role("button", name="Send", exact=True)).to_be_hidden()
    page.screenshot(path=str(shots / "campaign-live-done-1366.png"), full_page=True)
    small.screenshot(path=str(shots / "campaign-live-done-375.png"), full_page=True)
    # The page's figures are the database's and the provider's.
    assert portal["provider"].posts == PEOPLE
    assert set(portal["provider"].delivered.values()) == {1}

    page.goto(f"{portal['base']}/delivery-log")
    expect(page.get_by_role("heading", level=1)).to_have_text("Delivery log")
    expect(page.locator("table")).to_contain_text("•••• ")
    expect(page.locator("table")).not_to_contain_text("Food distribution on Friday")
    page.screenshot(path=str(shots / "delivery-log-1366.png"), full_page=True)
    small.goto(f"{portal['base']}/delivery-log")
    small.screenshot(path=str(shots / "delivery-log-375.png"), full_page=True)
    context.close()
    phone.close()

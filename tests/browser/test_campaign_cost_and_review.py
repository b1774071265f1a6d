"""In a real browser, at 1366 px and on a 375 px phone: the campaign composer's preview prices
each language and the total at SMS_PRICE_PER_SEGMENT, and staff settle the delivery log's
messages to check, one as not sent (it is sent again, once) and the rest at once as delivered,
each after a confirmation. Then the campaign page in Nepali and the delivery log in Arabic.
Screenshots go to ARTIFACTS_DIR."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.support import campaign_run, staff_browser

pytestmark = pytest.mark.browser
EN = "Food distribution on Friday at the school."
NE = "शुक्रबार विद्यालयमा खाद्यान्न वितरण।"


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    from portal.extensions import db
    from tests.support import stack

    folder = tmp_path_factory.mktemp("cost-review-stack")
    with stack.served_portal(
        database_url=sqlite_factory(),
        redis_url=redis_db.url,
        secrets=portal_secrets,
        folder=folder,
        name="costreview",
        SMS_PRICE_PER_SEGMENT="0.0079",
        SMS_PRICE_CURRENCY="USD",
    ) as served:
        with served["app"].app_context():
            served.update(prepare())
            db.session.remove()
        yield served


def prepare() -> dict:
    from portal.accounts import services as accounts
    from portal.comms.models import OutboxMessage
    from portal.extensions import db
    from portal.projects import services as projects

    user = accounts.create_user(
        "cost-prep@example.org", "Prep", "a-long-prep-password-92", accounts.role_by_name("admin")
    )
    project = projects.create({"name": "Hill villages", "type": "cva"}, user)
    projects.change_status(project, "active")
    db.session.commit()
    campaign_run.seed_people(project.id, 5, start=900)  # 3 in English, 2 in Nepali
    # Three sends a dead worker interrupted: the provider may or may not have them.
    ids = []
    for i in range(3):
        message = OutboxMessage(
            channel="sms",
            purpose="notice",
            recipient=f"+97798410009{i:02d}",
            body=EN,
            provider="outbox",
            key=str(uuid.uuid4()),
            status="review",
            error="Sending was interrupted: the provider may or may not have it.",
            project_id=project.id,
        )
        db.session.add(message)
        db.session.flush()
        ids.append(message.id)
    db.session.commit()
    return {"project": project.name, "review_ids": ids}


def test_the_preview_prices_each_language(chromium, portal, shots):
    for width, height in ((1366, 900), (375, 812)):
        context = chromium.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        staff_browser.sign_in_to(page, portal)
        page.goto(f"{portal['base']}/campaigns/new")
        page.get_by_label("Name").fill("Friday notice")
        page.get_by_label("Project", exact=True).select_option(label=portal["project"])
        page.get_by_label("Text in English (required)").fill(EN)
        page.get_by_label("Text in नेपाली (Nepali)").fill(NE)
        page.get_by_role("button", name="Preview").click()
        cost = page.locator("#campaign-cost")
        usd = "USD\u00a0"
        expect(cost.locator('[data-cost-language="en"] [data-people]')).to_have_text("3")
        expect(cost.locator('[data-cost-language="en"] [data-cost]')).to_have_text(
            "USD\u00a00.0237"
        )
        expect(cost.locator('[data-cost-language="ne"] [data-people]')).to_have_text("2")
        expect(cost.locator('[data-cost-language="ne"] [data-cost]')).to_have_text(
            "USD\u00a00.0158"
        )
        expect(cost.locator("[data-cost-total] [data-segments]")).to_have_text("5")
        expect(cost.locator("[data-cost-total] [data-cost]")).to_have_text(usd + "0.0395")
        expect(page.locator('[data-preview="ne"]')).to_contain_text("UCS-2")
        # Nothing runs off the side of a phone.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        page.screenshot(path=str(shots / f"campaign-cost-{width}.png"), full_page=True)
        context.close()


def test_staff_settle_messages_to_check(chromium, portal, shots):
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    staff_browser.sign_in_to(page, portal)
    page.goto(f"{portal['base']}/delivery-log?status=review")
    first, *rest = portal["review_ids"]
    row = page.locator(f'tr[data-message-id="{first}"]')
    expect(row.locator(".badge")).to_have_text("To check")
    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    row.get_by_role("button", name="Not sent").click()
    expect(row.locator(".badge")).to_have_text("To check")  # dismissed: nothing changed
    assert asked and "send it again" in asked[0]
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Not sent").click()
    expect(page.locator(".flash, .toast, [role=status], .notice").first).to_contain_text(
        "queued to be sent again"
    )
    expect(page.locator(f'tr[data-message-id="{first}"]')).to_have_count(0)
    page.screenshot(path=str(shots / "delivery-review-1366.png"), full_page=True)
    # The message left the review list and is sent once by the worker.
    page.goto(f"{portal['base']}/delivery-log")
    expect(page.locator(f'tr[data-message-id="{first}"] .badge')).to_have_text(
        re.compile("Sent|Delivered"), timeout=30_000
    )

    phone = chromium.new_context(viewport={"width": 375, "height": 812}, is_mobile=True)
    small = phone.new_page()
    staff_browser.sign_in_to(small, portal)
    small.goto(f"{portal['base']}/delivery-log?status=review")
    button = small.get_by_role("button", name=re.compile(r"Mark all 2 as delivered"))
    small.screenshot(path=str(shots / "delivery-review-375.png"), full_page=True)
    small.once("dialog", lambda dialog: dialog.accept())
    button.click()
    expect(small.locator("p.empty")).to_be_visible()
    small.goto(f"{portal['base']}/delivery-log?status=delivered")
    for message_id in rest:
        expect(small.locator(f'tr[data-message-id="{message_id}"] .badge')).to_have_text(
            "Delivered"
        )
    context.close()
    phone.close()


def test_the_pages_in_nepali_and_arabic(chromium, portal, shots):
    for locale, width in (("ne", 375), ("ne", 1366), ("ar", 375)):
        context = chromium.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        staff_browser.sign_in_to(page, portal)
        page.goto(f"{portal['base']}/account")
        with page.expect_navigation():
            page.evaluate(
                """(locale) => {
                const form = document.querySelector('form[action$="/account/language"]');
                form.querySelector('[name=locale]').value = locale;
                form.submit();
            }""",
                locale,
            )
        page.goto(f"{portal['base']}/campaigns/new")
        expect(page.locator("html")).to_have_attribute("lang", locale)
        if locale == "ar":
            expect(page.locator("html")).to_have_attribute("dir", "rtl")
            page.goto(f"{portal['base']}/delivery-log")
            expect(page.get_by_role("heading", level=1)).to_have_text("سجل التسليم")
        else:
            expect(page.get_by_role("heading", level=1)).to_have_text("नयाँ अभियान")
            page.goto(f"{portal['base']}/grievances/")
            expect(page.get_by_role("heading", level=1)).to_have_text("गुनासोहरू")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        page.screenshot(path=str(shots / f"comms-{locale}-{width}.png"), full_page=True)
        context.close()

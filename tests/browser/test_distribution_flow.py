"""The whole distribution in three browser contexts: staff deploy, fund and allocate through the
pages (a finance approver approves both in a browser of their own) and watch the disbursement's
bar finish; a vendor on a 375 px phone charges a beneficiary
with the code from the development outbox; the live dashboard, open in a third context, shows
the redemption by itself, without a reload.

The portal runs as ``flask serve`` with its worker threads and the embedded EVM; the test process
only creates the people, the group and the vendor through the services on the same database.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_approvals_flow import approver_sign_in
from tests.browser.test_vendor_phone import (
    PHONE,
    newest_message_id,
    read_code,
    staff_sign_in,
)
from tests.support import stack, twofactor

pytestmark = pytest.mark.browser
VENDOR_PHONE, PERSON_PHONE = "9805700001", "9845700001"
APPROVER_PASSWORD = "a-long-flow-approver-password-8"


@pytest.fixture(scope="module")
def world(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    from portal.extensions import db

    with stack.served_portal(
        database_url=sqlite_factory(),
        redis_url=redis_db.url,
        secrets=portal_secrets,
        folder=tmp_path_factory.mktemp("distribution-stack"),
        name="flow",
    ) as served:
        with served["app"].app_context():
            ids = _people_and_vendor()
            db.session.remove()
        yield {**served, **ids}


def _people_and_vendor() -> dict:
    from sqlalchemy import select

    from portal.accounts import services as accounts
    from portal.accounts.models import User
    from portal.beneficiaries import groups
    from portal.beneficiaries import services as beneficiaries
    from portal.extensions import db
    from portal.projects import services as projects
    from portal.vendors import services as vendors

    admin = db.session.scalar(select(User).limit(1))
    project = projects.create({"name": "Flood response flow", "type": "cva"}, admin)
    projects.change_status(project, "active")
    people = [
        beneficiaries.create(
            {"name": f"Flow Person {i}", "phone": f"98457000{i:02d}"}, project=project
        )
        for i in range(1, 6)
    ]
    group = groups.create(project, "Ward 3", "first round")
    groups.add_members(group, people)
    shop = vendors.register(
        {
            "name": "Flow Grocers",
            "phone": VENDOR_PHONE,
            "category": "shop",
            "contact_name": "Owner",
        },
        project=project,
    )
    vendors.change_status(shop, "approved")
    # Funding and the start wait for a second person: a finance approver in the project.
    roles = accounts.seed_roles()
    approver = accounts.create_user(
        "flow-approver@example.org", "Flow Approver", APPROVER_PASSWORD, roles["finance approver"]
    )
    projects.set_members(project, {admin.id, approver.id})
    twofactor.enrol(approver)  # a finance role: the policy asks them for a code
    db.session.commit()
    return {"project_id": project.id, "group_id": group.id, "approver_email": approver.email}


def _approve_in_own_browser(chromium, base: str, email: str) -> None:
    """The second person signs in elsewhere and approves what waits for them."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    approver_sign_in(page, base, email, APPROVER_PASSWORD)
    page.goto(f"{base}/approvals")
    item = page.locator("#approvals-waiting [data-approval-id]").first
    item.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("Nothing waits for your approval")).to_be_visible()
    context.close()


def test_staff_allocate_vendor_charges_dashboard_follows(chromium, world, shots):
    base, pid = world["base"], world["project_id"]
    staff = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = staff.new_page()
    staff_sign_in(page, world)

    # Deploy and fund from the project's Contracts page; it reloads itself as jobs confirm.
    page.goto(f"{base}/projects/{pid}/chain")
    page.get_by_label("Short code").fill("FLOW")
    page.get_by_role("button", name="Set up payments").click()
    expect(page.locator("#chain-page .badge")).to_have_text("ready", timeout=60_000)
    page.get_by_label("Amount to fund").fill("1000")
    page.once("dialog", lambda dialog: dialog.accept())  # the confirm step
    page.get_by_role("button", name="Ask to fund").click()
    _approve_in_own_browser(chromium, base, world["approver_email"])
    expect(page.locator(".stat__n").first).to_have_text(
        re.compile(r"^NPR\s1,000\.00$"), timeout=60_000
    )

    # A disbursement to the group: the draft, then Start, then the bar reaches 100 %.
    page.goto(f"{base}/projects/{pid}/disbursements/new")
    page.get_by_label("Title").fill("Ward 3 first round")
    page.get_by_label("Amount per person").fill("40")
    page.get_by_label("Group").select_option(str(world["group_id"]))
    page.get_by_label("People per batch").fill("2")
    page.get_by_role("button", name="Prepare").click()
    expect(page.locator("#d-status .badge")).to_have_text("draft")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Start allocation").click()
    _approve_in_own_browser(chromium, base, world["approver_email"])
    expect(page.locator("#progress-text")).to_contain_text("5 of 5 people", timeout=60_000)
    expect(page.locator("#d-status .badge")).to_have_text("completed", timeout=30_000)
    page.screenshot(path=str(shots / "flow-1-disbursement.png"), full_page=True)

    # The dashboard, in its own context, before anything is redeemed.
    wall = chromium.new_context(viewport={"width": 1920, "height": 1080})
    dashboard = wall.new_page()
    staff_sign_in(dashboard, world)
    dashboard.goto(f"{base}/projects/{pid}/live")
    expect(dashboard.locator('[data-kpi="allocated"]')).to_have_text("200.00")
    expect(dashboard.locator('[data-kpi="redeemed"]')).to_have_text("0.00")
    expect(dashboard.locator("#dash-conn")).to_have_attribute("data-state", "on")

    # The vendor on a phone: sign in with the SMS code, charge a person, type their code.
    outbox = staff.new_page()
    outbox.goto(f"{base}/dev/outbox")
    phone = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    vendor = phone.new_page()
    vendor.goto(f"{base}/vendor/sign-in")
    last = newest_message_id(outbox)
    vendor.get_by_label("Your phone number").fill(VENDOR_PHONE)
    vendor.get_by_role("button", name="Send me a code").click()
    vendor.get_by_label("Code").fill(read_code(outbox, "vendor.sign_in", VENDOR_PHONE[-7:], last))
    vendor.get_by_role("button", name="Sign in").click()
    expect(vendor.get_by_role("heading", level=1)).to_have_text("Flow Grocers")

    vendor.goto(f"{base}/vendor/charge")
    vendor.get_by_label("Or the beneficiary's phone number").fill(PERSON_PHONE)
    vendor.get_by_label("Amount").fill("12.50")
    last = newest_message_id(outbox)
    vendor.get_by_role("button", name="Send the code to the beneficiary").click()
    code = read_code(outbox, "redemption.code", PERSON_PHONE[-7:], last)
    vendor.get_by_label("Code").fill(code)
    vendor.get_by_role("button", name="Confirm payment").click()
    expect(vendor.get_by_text("Confirmed").first).to_be_visible(timeout=60_000)
    width = vendor.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    vendor.screenshot(path=str(shots / "flow-2-vendor-receipt.png"), full_page=True)

    # The wall screen moved by itself: no reload happened on that page.
    expect(dashboard.locator('[data-kpi="redeemed"]')).to_have_text("12.50", timeout=5_000)
    expect(dashboard.locator('[data-kpi="remaining"]')).to_have_text("187.50")
    expect(dashboard.locator('[data-kpi="people-served"]')).to_have_text("1", timeout=5_000)
    dashboard.screenshot(path=str(shots / "flow-3-dashboard.png"))
    for context in (phone, wall, staff):
        context.close()

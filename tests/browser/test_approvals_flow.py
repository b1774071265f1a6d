"""Four-eyes in two browsers: one person asks to fund a project; a second person, in another
browser context, sees the request appear on their Pending approvals page by itself, and
approves it; the first sees it approved and the funding arrive without reloading.

The portal runs as ``flask serve`` with its worker threads and the embedded EVM.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_vendor_phone import PHONE, staff_sign_in
from tests.support import stack, staff_browser, twofactor

pytestmark = pytest.mark.browser
APPROVER_PASSWORD = "a-long-approver-password-51"


@pytest.fixture(scope="module")
def world(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    from portal.extensions import db

    with stack.served_portal(
        database_url=sqlite_factory(),
        redis_url=redis_db.url,
        secrets=portal_secrets,
        folder=tmp_path_factory.mktemp("approvals-stack"),
        name="fourEyes",
    ) as served:
        with served["app"].app_context():
            ids = _project_and_approver()
            db.session.remove()
        yield {**served, **ids}


def _project_and_approver() -> dict:
    from sqlalchemy import select

    from portal.accounts import services as accounts
    from portal.accounts.models import User
    from portal.extensions import db
    from portal.projects import services as projects

    admin = db.session.scalar(select(User).limit(1))
    roles = accounts.seed_roles()
    approver = accounts.create_user(
        "second-eyes@example.org", "Second Eyes", APPROVER_PASSWORD, roles["finance approver"]
    )
    project = projects.create({"name": "Four eyes relief", "type": "cva"}, admin)
    projects.change_status(project, "active")
    projects.set_members(project, {admin.id, approver.id})
    twofactor.enrol(approver)  # a finance role: the policy asks them for a code
    db.session.commit()
    return {"project_id": project.id, "approver_email": approver.email}


def approver_sign_in(page, base: str, email: str, password: str = APPROVER_PASSWORD) -> None:
    staff_browser.sign_in(page, base, email, password)


def test_one_asks_to_fund_another_approves_live(chromium, world, shots):
    base, pid = world["base"], world["project_id"]
    asker_ctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    asker = asker_ctx.new_page()
    staff_sign_in(asker, world)
    asker.goto(f"{base}/projects/{pid}/chain")
    asker.get_by_label("Short code").fill("EYES")
    asker.get_by_role("button", name="Set up payments").click()
    expect(asker.locator("#chain-page .badge")).to_have_text("ready", timeout=60_000)

    # The second person waits on their Pending approvals page, on a phone.
    approver_ctx = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    approver = approver_ctx.new_page()
    approver_sign_in(approver, base, world["approver_email"])
    approver.goto(f"{base}/approvals")
    expect(approver.get_by_text("Nothing waits for your approval")).to_be_visible()
    expect(approver.locator("#live-dot")).to_have_attribute("data-state", "on", timeout=15_000)
    approver.evaluate("window.__notReloaded = true")

    asker.get_by_label("Amount to fund").fill("750")
    asker.get_by_label("Note").fill("Grant 7")
    asker.once("dialog", lambda dialog: dialog.accept())  # the confirm step
    asker.get_by_role("button", name="Ask to fund").click()
    waiting_row = asker.locator("[data-approvals-here] [data-approval-id]").first
    expect(waiting_row).to_contain_text("Waiting for approval by Second Eyes")
    expect(waiting_row.locator('[data-field="status"]')).to_have_text("pending")
    expect(asker.locator(".stat__n").first).to_have_text(re.compile(r"^NPR\s0\.00$"))
    expect(asker.locator("#live-dot")).to_have_attribute("data-state", "on", timeout=15_000)

    # It appears by itself on the approver's page, with the badge.
    item = approver.locator("#approvals-waiting [data-approval-id]")
    expect(item).to_contain_text("Fund Four eyes relief with NPR 750.00 (Grant 7)", timeout=15_000)
    expect(approver.locator("summary [data-approvals-count]")).to_have_text("1")
    assert approver.evaluate("window.__notReloaded === true")
    width = approver.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    approver.screenshot(path=str(shots / "approvals-375-waiting.png"), full_page=True)

    asker.evaluate("window.__notReloaded = true")
    item.get_by_label("Reason").fill("Grant letter 7 checked")
    item.get_by_role("button", name="Approve").click()
    expect(approver.get_by_text("Nothing waits for your approval")).to_be_visible()
    expect(approver.locator("summary [data-approvals-count]")).to_be_hidden()

    # The asker sees it approved and the mint arrive, without touching the page.
    status = asker.locator('[data-approvals-here] [data-field="status"]').first
    expect(status).to_have_text("executed", timeout=15_000)
    expect(asker.locator(".stat__n").first).to_have_text(
        re.compile(r"^NPR\s750\.00$"), timeout=60_000
    )
    expect(asker.get_by_text("Approved by Second Eyes")).to_be_visible()
    asker.screenshot(path=str(shots / "approvals-1280-funded.png"), full_page=True)

    asker.goto(f"{base}/approvals")
    mine = asker.get_by_role("region", name="What you asked for")
    expect(mine.get_by_text("Grant letter 7 checked")).to_be_visible()
    asker.screenshot(path=str(shots / "approvals-1280-list.png"), full_page=True)
    asker_ctx.close()
    approver_ctx.close()


def test_a_start_above_the_threshold_waits_for_two_and_the_pages_fit_a_phone(
    chromium, world, shots
):
    """Runs after the funding test (the project is funded): the threshold set on the project's
    Approval rule page, a start above it, the first approval leaves it waiting for a second."""
    from portal.beneficiaries import groups
    from portal.beneficiaries import services as beneficiaries
    from portal.extensions import db
    from portal.projects.models import Project

    base, pid = world["base"], world["project_id"]
    with world["app"].app_context():
        project = db.session.get(Project, pid)
        people = [
            beneficiaries.create(
                {"name": f"Eyes {i}", "phone": f"98467000{i:02d}"}, project=project
            )
            for i in range(1, 4)
        ]
        group = groups.create(project, "Eyes group", "")
        groups.add_members(group, people)
        db.session.commit()
        group_id = group.id
        db.session.remove()

    staff_ctx = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    staff = staff_ctx.new_page()
    staff_sign_in(staff, world)
    staff.goto(f"{base}/projects/{pid}/approvals")
    staff.get_by_label("Second approver needed above").fill("100")
    staff.get_by_role("button", name="Save").click()
    expect(staff.get_by_text("two different approvers are needed")).to_be_visible()
    assert staff.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    staff.screenshot(path=str(shots / "approvals-375-rule.png"), full_page=True)

    staff.goto(f"{base}/projects/{pid}/disbursements/new")
    staff.get_by_label("Title").fill("Eyes round")
    staff.get_by_label("Amount per person").fill("50")
    staff.get_by_label("Group").select_option(str(group_id))
    staff.get_by_role("button", name="Prepare").click()
    staff.once("dialog", lambda dialog: dialog.accept())
    staff.get_by_role("button", name="Start allocation").click()
    row = staff.locator("[data-approvals-here] [data-approval-id]").first
    expect(row).to_contain_text("0 of 2 approvals")
    expect(row).to_contain_text("Waiting for approval by Second Eyes")
    assert staff.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    staff.screenshot(path=str(shots / "approvals-375-disbursement.png"), full_page=True)

    approver_ctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    approver = approver_ctx.new_page()
    approver_sign_in(approver, base, world["approver_email"])
    approver.goto(f"{base}/approvals")
    item = approver.locator("#approvals-waiting [data-approval-id]").first
    expect(item).to_contain_text("3 people × NPR 50.00 = NPR 150.00")
    item.get_by_role("button", name="Approve").click()
    expect(approver.get_by_text("now waits for a second approver")).to_be_visible()
    # Still a draft: one approver is not enough above the threshold.
    expect(staff.locator("#d-status .badge")).to_have_text("draft")
    staff.reload()
    expect(staff.locator("[data-approvals-here]")).to_contain_text("1 of 2 approvals")
    expect(staff.locator("[data-approvals-here]")).to_contain_text(
        "nobody yet: no one else in this project may approve it"
    )
    staff_ctx.close()
    approver_ctx.close()

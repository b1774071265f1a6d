"""The payouts pages in a real browser, at 1280 px and on a 375 px phone: the payouts list and
a payout, a bank batch, the reconciliation view after a statement with exceptions, the
mobile-money settings (keys shown only as set / not set), and the vendor adding a mobile-money
number on the phone. Screenshots go to ARTIFACTS_DIR."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_vendor_phone import newest_message_id, read_code, staff_outbox
from tests.support import staff_browser

pytestmark = pytest.mark.browser
PHONE = {"width": 375, "height": 812}
VENDOR_PHONE = "9805600077"
IDS: dict[str, object] = {}


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    from portal.extensions import db
    from tests.support import stack

    folder = tmp_path_factory.mktemp("payout-stack")
    with stack.served_portal(
        database_url=sqlite_factory(),
        redis_url=redis_db.url,
        secrets=portal_secrets,
        folder=folder,
        name="payouts",
        # The local mobile-money server listens on 127.0.0.1; the follow-up check after sending
        # and the sweeper's check wait ten minutes, so only the callback can end a payout here.
        OUTBOUND_PRIVATE_HOSTS="127.0.0.1",
        PAYOUT_CHECK_AFTER_SECONDS="600",
    ) as served:
        with served["app"].app_context():
            prepare(folder)
            db.session.remove()
        yield served


def prepare(folder) -> None:
    """A project with a token, a vendor with a bank account, three bank payouts in a batch sent
    to the bank, and a statement that matches one, has another off by one unit and one line
    nobody sent."""
    from portal.accounts import services as accounts
    from portal.chain.models import ProjectChain
    from portal.extensions import db
    from portal.payouts import batches, methods, services
    from portal.projects import services as projects
    from portal.reconciliation import services as reconciliation
    from portal.vendors import services as vendors

    admin = accounts.role_by_name("admin")
    user = accounts.create_user("payout-prep@example.org", "Prep", "a-long-prep-password-91", admin)
    project = projects.create({"name": "Flood relief", "type": "cva", "currency": "NPR"}, user)
    projects.change_status(project, "active")
    db.session.add(
        ProjectChain(
            project_id=project.id,
            chain_id=1,
            symbol="AID",
            decimals=2,
            contract_kind="Entitlements",
            status="deployed",
        )
    )
    vendor = vendors.register(
        {"name": "Hill Grocers", "phone": VENDOR_PHONE, "category": "shop", "contact_name": "Maya"},
        project,
    )
    vendors.change_status(vendor, "approved")
    IDS["momo_method"] = methods.add(
        vendor, {"kind": "momo", "account_name": "Maya Gurung", "account_number": "+9779841000077"}
    ).id
    methods.add(
        vendor,
        {
            "make_default": True,
            "kind": "bank",
            "account_name": "Hill Grocers Pvt",
            "account_number": "01234567890123",
            "bank_code": "NABILNPKA",
        },
    )
    made = [
        services.request_payout(project.id, vendor.id, a, narrative="Week 49")
        for a in (1_250_000, 480_050, 99_900)
    ]
    batch = batches.build(project.id, user.id)
    batches.mark_sent(batch, user.id)
    path = folder / "statement.csv"
    path.write_text(
        "Reference,Amount,Currency,Value date\n"
        f"{made[0].reference},12500.00,NPR,2026-12-02\n"
        f"{made[1].reference},4800.51,NPR,2026-12-02\n"
        "7d0c5f7e-1111-4222-8333-944455556666,300.00,NPR,2026-12-02\n"
    )
    reconciliation.upload(project, path, "bank-statement-dec.csv", user.id)
    db.session.commit()
    IDS.update(project=project.id, vendor=vendor.id, payout=made[1].id, batch=batch.id)


def _staff(chromium, portal, width):
    context = chromium.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    staff_browser.sign_in_to(page, portal, home=False)
    return context, page


@pytest.mark.parametrize("width", [1280, 375])
def test_staff_pages(chromium, portal, shots, width):
    context, page = _staff(chromium, portal, width)
    base = portal["base"]
    pages = {
        "list": "/payouts/",
        "payout": f"/payouts/{IDS['payout']}",
        "batches": "/payouts/batches",
        "batch": f"/payouts/batches/{IDS['batch']}",
        "reconciliation": f"/reconciliation/?project={IDS['project']}",
        "methods": f"/payouts/vendors/{IDS['vendor']}/methods",
        "settings": "/payouts/settings",
    }
    for name, path in pages.items():
        page.goto(base + path)
        expect(page.locator("h1")).to_be_visible()
        page.screenshot(path=str(shots / f"payouts-{name}-{width}.png"), full_page=True)
    page.goto(base + pages["reconciliation"])
    expect(page.locator("#exceptions h2")).to_have_text("To resolve (2)")
    expect(page.locator("#missing h2")).to_contain_text("(2)")
    page.goto(base + pages["settings"])
    expect(page.locator("[data-key]")).to_have_text(["not set", "not set", "not set"])
    context.close()


def test_vendor_adds_a_mobile_money_number(chromium, portal, shots):
    staff, outbox = staff_outbox(chromium, portal)
    phone = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = phone.new_page()
    base = portal["base"]
    page.goto(f"{base}/vendor/sign-in")
    last = newest_message_id(outbox)
    page.get_by_label("Your phone number").fill(VENDOR_PHONE)
    page.get_by_role("button", name="Send me a code").click()
    code = read_code(outbox, "vendor.sign_in", VENDOR_PHONE[-7:], last)
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Where we pay you").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Where we pay you")
    page.get_by_label("Mobile money").check()
    page.get_by_label("Account holder's name").fill("Maya Gurung")
    page.get_by_label("Account number or mobile-money number").fill("9841234567")
    page.get_by_role("button", name="Add").click()
    expect(page.locator("#methods")).to_contain_text("•••• 4567")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the methods page is {width}px wide"
    page.screenshot(path=str(shots / "vendor-payout-methods-375.png"), full_page=True)
    last_sms = read_code_free(outbox)
    assert re.search(r"4567", last_sms)
    phone.close()
    staff.close()


def read_code_free(outbox) -> str:
    outbox.reload()
    return outbox.locator('tr[data-purpose="payout-method"] [data-body]').first.inner_text()


def test_a_mobile_money_payout_goes_paid_on_the_open_page_after_the_callback(
    chromium, portal, shots
):
    """The served portal's worker sends the transfer to the local provider; the provider's
    callback reaches the portal over HTTP, the portal asks for the status, and the open payout
    page shows *paid* without a reload."""
    from portal.extensions import db
    from portal.payouts import momo, services
    from portal.payouts.models import Payout
    from portal.settings import services as settings
    from tests.support.momo_server import FakeMomo

    app = portal["app"]
    with FakeMomo() as fake:
        fake.lose_callbacks = True  # held back until the page is open
        with app.app_context():
            for key, value in (
                (momo.BASE_URL, fake.url),
                (momo.CALLBACK_BASE_URL, portal["base"]),
                (momo.API_USER, fake.api_user),
                (momo.API_KEY, fake.api_key),
                (momo.SUBSCRIPTION_KEY, fake.subscription_key),
            ):
                settings.set_value(key, value)
            payout = services.request_payout(
                IDS["project"], IDS["vendor"], 70_000, method_id=IDS["momo_method"]
            )
            db.session.commit()
            payout_id, reference = payout.id, payout.reference
            db.session.remove()
        context, page = _staff(chromium, portal, 1280)
        page.goto(f"{portal['base']}/payouts/{payout_id}")
        expect(page.locator("#payout-detail [data-field=status] .badge")).to_have_text(
            "Sent", timeout=30_000
        )
        page.wait_for_timeout(500)  # the page's socket has subscribed
        fake.lose_callbacks = False
        fake.finish(reference)
        assert fake.delivered and fake.delivered[0][1] == 202, fake.delivered
        expect(page.locator("#payout-detail [data-field=status] .badge")).to_have_text(
            "Paid", timeout=30_000
        )
        page.screenshot(path=str(shots / "payouts-live-paid-1280.png"), full_page=True)
        assert fake.status_queries[reference] == 1  # the callback led to the status query
        with app.app_context():
            assert db.session.get(Payout, payout_id).status == "paid"
            db.session.remove()
        context.close()

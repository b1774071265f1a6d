"""The portal in other languages, in a real browser: the vendor's phone pages in Nepali at
375 px (chosen by the vendor), sign-in and a vendor page in Arabic laid out right to left, and
the message template editor's live preview.

The project is prepared as deployed without a chain (as the unit tests do): these pages are
about words and layout; the payment's chain step has its own browser test.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.support import stack, staff_browser

pytestmark = pytest.mark.browser
CODE = re.compile(r"\b(\d{6})\b")
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1366, "height": 900}
VENDOR_PHONE, PERSON_PHONE = "9805700001", "9845700001"
LATIN_WORDS = re.compile(r"\b(the|your|and|Charge|Payments|Home|Cash out)\b")


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    from portal.extensions import db

    with stack.served_portal(
        database_url=sqlite_factory(),
        redis_url=redis_db.url,
        secrets=portal_secrets,
        folder=tmp_path_factory.mktemp("languages-stack"),
        name="languages",
    ) as served:
        with served["app"].app_context():
            prepare()
            db.session.remove()
        yield served


def prepare() -> None:
    from sqlalchemy import select

    from portal.accounts.models import User
    from portal.beneficiaries import services as beneficiaries
    from portal.extensions import db
    from portal.projects import services as projects
    from portal.vendors import services as vendors
    from tests.support import chain

    admin = db.session.scalar(select(User).limit(1))
    project = projects.create({"name": "Koshi food vouchers", "type": "cva"}, admin)
    projects.change_status(project, "active")
    person = beneficiaries.create(
        {"name": "Language Test Person", "phone": PERSON_PHONE, "language": "ne"},
        project=project,
    )
    shop = vendors.register(
        {"name": "Hill Grocers", "phone": VENDOR_PHONE, "category": "shop", "contact_name": "O"},
        project=project,
    )
    vendors.change_status(shop, "approved")
    chain.pretend_deployed(project)
    chain.entitle(project, person, 400_000)
    db.session.commit()


def newest_code(purpose: str, after: int, timeout: float = 30) -> tuple[int, str]:
    """The code of the newest ``purpose`` message after message id ``after`` (the outbox row,
    read in this process with the same keys)."""
    from sqlalchemy import select

    from portal.comms.models import OutboxMessage
    from portal.extensions import db

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()
        row = db.session.scalar(
            select(OutboxMessage)
            .where(OutboxMessage.purpose == purpose, OutboxMessage.id > after)
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )
        if row is not None:
            return row.id, CODE.search(row.body).group(1)
        time.sleep(0.2)
    raise AssertionError(f"no {purpose} message")


def last_id() -> int:
    from sqlalchemy import func, select

    from portal.comms.models import OutboxMessage
    from portal.extensions import db

    db.session.rollback()
    return db.session.scalar(select(func.coalesce(func.max(OutboxMessage.id), 0)))


def vendor_sign_in(page, base: str, app, label: str, button: str, code_label: str, go: str):
    with app.app_context():
        before = last_id()
    page.goto(f"{base}/vendor/sign-in")
    page.get_by_label(label).fill(VENDOR_PHONE)
    page.get_by_role("button", name=button).click()
    page.wait_for_url(re.compile(r"/vendor/sign-in/code"))
    with app.app_context():
        _, code = newest_code("vendor.sign_in", before)
    page.get_by_label(code_label, exact=True).fill(code)
    page.get_by_role("button", name=go).click()
    page.wait_for_url(re.compile(r"/vendor/$"))


def fits(page, name: str, shots, width: int = PHONE["width"]) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{name} is {scroll}px wide on a {width}px screen"
    page.screenshot(path=str(shots / f"languages-{name}.png"), full_page=True)


def side_of(page, selector: str) -> str:
    """Which half of the viewport the element's box sits in."""
    box = page.locator(selector).first.bounding_box()
    width = page.evaluate("window.innerWidth")
    middle = box["x"] + box["width"] / 2
    return "right" if middle > width / 2 else "left"


def test_arabic_sign_in_and_vendor_page_run_right_to_left(chromium, portal, shots):
    base, app = portal["base"], portal["app"]
    desk = chromium.new_context(viewport=DESKTOP, locale="ar")
    page = desk.new_page()
    page.goto(f"{base}/login")
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "rtl")
    expect(html).to_have_attribute("lang", "ar")
    expect(page.get_by_role("heading", level=1)).to_have_text("تسجيل الدخول")
    # The brand starts the top bar: on the right when the page runs right to left.
    assert side_of(page, ".brand") == "right"
    assert page.evaluate("getComputedStyle(document.querySelector('.card h1')).direction") == "rtl"
    fits(page, "ar-1-sign-in-1366", shots, DESKTOP["width"])
    desk.close()

    phone = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="ar")
    page = phone.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/vendor/sign-in")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    assert side_of(page, ".v-bar__brand") == "right"
    fits(page, "ar-2-vendor-sign-in", shots)
    vendor_sign_in(page, base, app, "رقم هاتفك", "أرسل لي رمزًا", "الرمز", "تسجيل الدخول")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.get_by_role("link", name="تحصيل من مستفيد")).to_be_visible()
    # A start-aligned heading sits against the right edge of its card.
    card = page.locator(".v-card").first.bounding_box()
    heading = page.locator(".v-card h2").first.bounding_box()
    assert abs((card["x"] + card["width"]) - (heading["x"] + heading["width"])) < 40
    assert side_of(page, ".v-bar__brand") == "right"
    fits(page, "ar-3-vendor-home", shots)
    page.get_by_role("link", name="تحصيل من مستفيد").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("تحصيل من مستفيد")
    fits(page, "ar-4-vendor-charge", shots)
    assert errors == []
    phone.close()


def test_vendor_pages_in_nepali_on_a_phone(chromium, portal, shots):
    base, app = portal["base"], portal["app"]
    phone = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = phone.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    vendor_sign_in(page, base, app, "Your phone number", "Send me a code", "Code", "Sign in")

    # The vendor chooses Nepali from the top bar; every phone page is in it from then on.
    page.locator(".v-bar__lang").click()
    page.get_by_label("Language").select_option("ne")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/vendor/$"))
    expect(page.locator("html")).to_have_attribute("lang", "ne")
    expect(page.locator(".flash")).to_have_text("भाषा सुरक्षित गरियो।")
    expect(page.get_by_role("heading", name="तपाईंको बाँकी रकम")).to_be_visible()
    expect(page.locator(".v-bar__lang")).to_have_text("नेपाली")
    fits(page, "ne-1-home", shots)

    page.get_by_role("link", name="लाभग्राहीबाट भुक्तानी लिनुहोस्").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("लाभग्राहीबाट भुक्तानी लिनुहोस्")
    fits(page, "ne-2-charge", shots)
    # A wrong amount: the field error in Nepali pages keeps what was typed.
    page.get_by_label("वा लाभग्राहीको फोन नम्बर").fill(PERSON_PHONE)
    page.get_by_label("रकम").fill("१२.५०")
    with app.app_context():
        before = last_id()
    page.get_by_role("button", name="लाभग्राहीलाई कोड पठाउनुहोस्").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("कोड माग्नुहोस्")
    expect(page.locator(".v-sum__amount")).to_contain_text("१२.५०")
    fits(page, "ne-3-code", shots)
    with app.app_context():
        _, code = newest_code("redemption.code", before)
    page.get_by_label("कोड").fill(code)
    page.get_by_role("button", name="भुक्तानी पक्का गर्नुहोस्").click()
    expect(page.locator(".v-receipt__amount")).to_contain_text("१२.५०")
    expect(page.get_by_text("यो भुक्तानीपछि बाँकी")).to_be_visible()
    fits(page, "ne-4-receipt", shots)

    for path, heading, name in (
        ("/vendor/payments", "भुक्तानीहरू", "ne-5-history"),
        ("/vendor/cash-out", "नगद झिक्नुहोस्", "ne-6-cash-out"),
        ("/vendor/payout-methods", "हामीले तपाईंलाई भुक्तानी गर्ने ठाउँ", "ne-7-payout-methods"),
    ):
        page.goto(f"{base}{path}")
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        visible = page.locator("main").inner_text()
        assert not LATIN_WORDS.search(visible), (path, LATIN_WORDS.search(visible))
        fits(page, name, shots)
    assert errors == []
    phone.close()


def test_the_message_editor_previews_as_staff_type(chromium, portal, shots):
    base = portal["base"]
    for viewport, name in ((DESKTOP, "1366"), (PHONE, "375")):
        context = chromium.new_context(viewport=viewport)
        page = context.new_page()
        staff_browser.sign_in_to(page, portal)
        page.goto(f"{base}/messages/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Messages to beneficiaries")
        expect(page.locator('[data-template="receipt:ne"]')).to_contain_text("नेपाली (Nepali)")
        page.goto(f"{base}/messages/receipt/ne")
        box = page.get_by_label("Message")
        box.fill("तपाईंले {shop} मा {amount} तिर्नुभयो। {left} बाँकी छ। " * 2)
        preview = page.locator("[data-preview-text]")
        expect(preview).to_contain_text("Sharma Kirana Pasal मा NPR १,५००.५०")
        expect(page.locator("[data-preview-encoding]")).to_have_text("UCS-2")
        expect(page.locator("[data-preview-segments]")).to_have_text("3")
        expect(page.locator("[data-preview-cost]")).to_contain_text("USD")
        box.fill("Paid {amount} {nonsense}")
        expect(page.locator(".error[data-live]")).to_contain_text("{nonsense}")
        # Even Latin words make a UCS-2 message in Nepali: the amounts are in Devanagari digits.
        box.fill("You paid {amount} at {shop}.")
        expect(page.locator("[data-preview-text]")).to_contain_text("१,५००.५०")
        expect(page.locator("[data-preview-encoding]")).to_have_text("UCS-2")
        page.goto(f"{base}/messages/receipt/en")
        box = page.get_by_label("Message")
        box.fill("You paid {amount} at {shop}.")
        expect(page.locator("[data-preview-text]")).to_have_text(
            "You paid NPR 1,500.50 at Sharma Kirana Pasal."
        )
        expect(page.locator("[data-preview-encoding]")).to_have_text("GSM-7")
        expect(page.locator("[data-preview-segments]")).to_have_text("1")
        fits(page, f"editor-{name}", shots, viewport["width"])
        context.close()


def _staff_speaks(app, email: str, code: str) -> int:
    """Set the stack's staff user's language; returns the project's id."""
    from sqlalchemy import select

    from portal.accounts.models import User
    from portal.extensions import db
    from portal.projects.models import Project

    with app.app_context():
        db.session.scalar(select(User).where(User.email == email)).locale = code
        db.session.commit()
        project_id = db.session.scalar(
            select(Project.id).where(Project.name == "Koshi food vouchers")
        )
        db.session.remove()
    return project_id


def test_staff_pages_in_nepali_and_the_account_page_in_arabic(chromium, portal, shots):
    """The home page and the live dashboard of a Nepali-speaking staff member at 375 and
    1366 px (Devanagari digits in amounts, drawn again by the dashboard's script), and the
    account page of an Arabic-speaking one, right to left; nothing wider than the screen."""
    from tests.support import staff_browser

    base, app = portal["base"], portal["app"]
    try:
        project_id = _staff_speaks(app, portal["email"], "ne")
        for size, viewport in (("375", PHONE), ("1366", DESKTOP)):
            context = chromium.new_context(viewport=viewport)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            staff_browser.sign_in_to(page, portal, home=False)
            page.goto(f"{base}/")
            expect(page.locator("html")).to_have_attribute("lang", "ne")
            expect(page.get_by_role("heading", level=1)).to_contain_text("स्वागत छ")
            expect(page.locator('[data-figure="allocated"]')).to_contain_text("४,०००.००")
            fits(page, f"ne-staff-home-{size}", shots, viewport["width"])
            page.goto(f"{base}/projects/{project_id}/live")
            expect(page.locator("#dash-conn")).to_have_text("लाइभ", timeout=10_000)
            # Drawn by the script from the snapshot: still the page's digits and grouping.
            expect(page.locator('[data-kpi="allocated"]')).to_have_text("४,०००.००")
            expect(page.locator('[data-kpi="people-allocated"]')).to_have_text("१")
            # The feed is empty, or shows the vendor test's payment with a Devanagari time.
            expect(page.locator("#dash-feed")).to_contain_text(
                re.compile("अहिलेसम्म कुनै खर्च भएको छैन।|[०-९]{2}:[०-९]{2}:[०-९]{2}")
            )
            fits(page, f"ne-staff-dashboard-{size}", shots, viewport["width"])
            assert errors == []
            context.close()

        _staff_speaks(app, portal["email"], "ar")
        for size, viewport in (("375", PHONE), ("1366", DESKTOP)):
            context = chromium.new_context(viewport=viewport)
            page = context.new_page()
            staff_browser.sign_in_to(page, portal, home=False)
            page.goto(f"{base}/account")
            expect(page.locator("html")).to_have_attribute("dir", "rtl")
            expect(page.get_by_role("heading", level=1)).to_have_text("حسابك")
            expect(page.get_by_role("heading", name="تغيير كلمة المرور")).to_be_visible()
            fits(page, f"ar-staff-account-{size}", shots, viewport["width"])
            context.close()
    finally:
        _staff_speaks(app, portal["email"], "en")

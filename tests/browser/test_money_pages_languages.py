"""The jobs and settlement pages in Nepali and a vendor page in Arabic, in a real browser at
375 px and 1366 px: the words, Devanagari digits in amounts and counts, the right-to-left
layout, nothing wider than the screen, and the pages' scripts repainting live states in the
page's language (a worker pushes English). Screenshots go to ARTIFACTS_DIR."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support import staff_browser

pytestmark = pytest.mark.browser
WIDTHS = (375, 1366)
IDS: dict[str, int] = {}
DEVANAGARI = re.compile("[०-९]")
NEPALI_GENERAL = "यो काम चलाउँदा केही गडबडी भयो (सन्दर्भ J"


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    from portal.extensions import db
    from tests.support import stack

    with stack.served_portal(
        database_url=sqlite_factory(),
        redis_url=redis_db.url,
        secrets=portal_secrets,
        folder=tmp_path_factory.mktemp("money-languages-stack"),
        name="moneylang",
    ) as served:
        with served["app"].app_context():
            prepare(served["email"])
            db.session.remove()
        yield served


def prepare(email: str) -> None:
    """A project with a token, a vendor with a long name, a settlement whose payout failed,
    and two failed jobs (one stored as a problem code, one as an older English sentence)."""
    from sqlalchemy import select

    from portal.accounts.models import User
    from portal.chain.models import ProjectChain
    from portal.extensions import db
    from portal.jobs import problems
    from portal.jobs.models import FAILED, Job
    from portal.projects import services as projects
    from portal.settlements.models import PAYOUT_FAILED, Settlement
    from portal.timeutil import utcnow
    from portal.vendors import services as vendors

    user = db.session.scalar(select(User).where(User.email == email))
    project = projects.create(
        {"name": "Koshi flood relief", "type": "cva", "currency": "NPR"}, user
    )
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
        {
            "name": "Sharma Kirana Pasal and General Store",
            "phone": "9805800011",
            "category": "pharmacy",
            "contact_name": "Maya",
            "location": "Biratnagar ward 4",
        },
        project,
    )
    vendors.change_status(vendor, "approved")
    settlement = Settlement(
        project_id=project.id,
        vendor_id=vendor.id,
        amount=1_250_050,
        status=PAYOUT_FAILED,
        burned=True,
        by_vendor=True,
        failure_reason="Not approved.",
    )
    db.session.add(settlement)
    jobs = [
        Job(
            kind="system.diagnostic",
            queue="default",
            status=FAILED,
            attempts=2,
            max_attempts=3,
            error="KeyError: 'x'",
            problem=problem,
            created_by_id=user.id,
            finished_at=utcnow(),
        )
        for problem in (problems.coded(problems.GENERAL, ref="J1-2"), problems.WORKER_GONE)
    ]
    db.session.add_all(jobs)
    db.session.commit()
    IDS.update(user=user.id, vendor=vendor.id, settlement=settlement.id, job=jobs[0].id)


def _language(app, code: str) -> None:
    from portal.accounts.models import User
    from portal.extensions import db

    with app.app_context():
        db.session.get(User, IDS["user"]).locale = code
        db.session.commit()
        db.session.remove()


def _fits(page, name: str, shots, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(shots / f"money-languages-{name}-{width}.png"), full_page=True)
    assert scroll <= width, f"{name} is {scroll}px wide on a {width}px screen"


def _live(page) -> None:
    """Wait until the page's socket is connected (its snapshot repaints what it shows)."""
    expect(page.locator("#live-dot")).to_have_attribute("data-state", "on", timeout=15_000)


@pytest.mark.parametrize("width", WIDTHS)
def test_jobs_and_a_settlement_in_nepali(chromium, portal, shots, width):
    base, app = portal["base"], portal["app"]
    context = chromium.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    staff_browser.sign_in_to(page, portal, home=False)
    _language(app, "ne")

    page.goto(f"{base}/jobs/")
    expect(page.locator("html")).to_have_attribute("lang", "ne")
    expect(page.get_by_role("heading", level=1)).to_have_text("कामहरू")
    _live(page)
    row = page.locator(f'tr[data-job-id="{IDS["job"]}"]')
    # After the live snapshot repainted the row: the status and sentence are still Nepali.
    page.wait_for_timeout(500)
    expect(row.locator('[data-field="status"] .badge')).to_have_text("असफल")
    expect(row.locator('[data-field="attempts"]')).to_have_text("२/३")
    if width > 600:  # the problem column is hidden on a phone
        expect(row.locator('[data-field="problem"]')).to_contain_text(NEPALI_GENERAL)
    expect(page.locator('[data-count="failed"]')).to_have_text(DEVANAGARI)
    _fits(page, "ne-jobs", shots, width)

    page.goto(f"{base}/jobs/{IDS['job']}")
    _live(page)
    page.wait_for_timeout(500)
    expect(page.locator('p[data-field="problem"]')).to_contain_text(NEPALI_GENERAL)
    _fits(page, "ne-job", shots, width)

    page.goto(f"{base}/settlements/{IDS['settlement']}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("फछ्र्यौट #")
    amount = page.locator("[data-settlement-amount]")
    expect(amount).to_have_text("NPR\u00a0१२,५००.५०")
    _live(page)
    page.wait_for_timeout(500)
    # The note, as the script writes it from the live snapshot: Nepali, Devanagari amount.
    expect(page.locator("[data-settlement-note]")).to_have_text(
        "विक्रेतालाई NPR\u00a0१२,५००.५० तिर्न बाँकी: फेरि भुक्तानी गर्नुहोस्"
    )
    expect(page.locator("[data-settlement-label]")).to_have_text("भुक्तानी असफल भयो")
    expect(page.get_by_text("स्वीकृत भएन।")).to_be_visible()  # the stored reason
    _fits(page, "ne-settlement", shots, width)
    assert errors == []
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_a_vendor_page_in_arabic(chromium, portal, shots, width):
    base, app = portal["base"], portal["app"]
    context = chromium.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    staff_browser.sign_in_to(page, portal, home=False)
    _language(app, "ar")
    page.goto(f"{base}/vendors/{IDS['vendor']}")
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "rtl")
    expect(html).to_have_attribute("lang", "ar")
    expect(page.get_by_role("heading", name="التفاصيل")).to_be_visible()
    expect(page.get_by_text("صيدلية")).to_be_visible()  # the category, "Pharmacy"
    heading = page.locator(".card h2").first
    assert page.evaluate("e => getComputedStyle(e).direction", heading.element_handle()) == "rtl"
    _fits(page, "ar-vendor", shots, width)
    page.goto(f"{base}/vendors/")
    expect(page.get_by_role("heading", level=1)).to_have_text("البائعون")
    _fits(page, "ar-vendors", shots, width)
    assert errors == []
    context.close()
    _language(app, "en")

"""The money trail in a real browser, at 1280 and 375 px: a project's redemptions filtered by
vendor, a beneficiary's money, and a vendor statement downloaded and read back."""

from __future__ import annotations

import io
import secrets
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.browser.test_staff_flow import sign_in
from tests.support import pg_race, stack

pytestmark = pytest.mark.browser

DAY = datetime(2026, 11, 2, 10, 0)


def _seed(url, redis_db, portal_secrets, tmp_path_factory, email: str) -> dict:
    """A project with two vendors, three people and a month of redemptions, in the database the
    web process serves."""
    from config import Config
    from portal import create_app
    from portal.accounts.models import User
    from portal.beneficiaries import services as beneficiaries
    from portal.extensions import db
    from portal.ledger import entitlements as ledger
    from portal.projects import services as projects
    from portal.redemptions.models import Redemption
    from portal.vendors import services as vendors
    from tests.support import chain

    options = pg_race.app_settings(url, redis_db, portal_secrets, tmp_path_factory)
    app = create_app(Config, role="worker", **options)
    with app.app_context():
        admin = db.session.query(User).filter_by(email=email).one()
        project = projects.create({"name": "Monsoon cash for food", "type": "cva"}, admin)
        projects.change_status(project, "active")
        chain.pretend_deployed(project, symbol="NPR", decimals=2)
        shops = [
            vendors.register(
                {"name": name, "phone": phone, "category": "shop", "contact_name": "Owner"},
                project=project,
            )
            for name, phone in (
                ("Laxmi Kirana Pasal", "9801000001"),
                ("Sagar Pharmacy", "9801000002"),
            )
        ]
        people = [
            beneficiaries.create({"name": name, "phone": phone}, project=project)
            for name, phone in (
                ("Sunita Chaudhary", "9841000011"),
                ("Ram Bahadur Tharu", "9841000012"),
                ("Gita Yadav", "9841000013"),
            )
        ]
        ledger.credit(project.id, [(p.id, "0x" + "ab" * 20, 500_000) for p in people])
        statuses = ["settled"] * 6 + ["submitted", "failed"]
        for n in range(24):
            person, shop = people[n % 3], shops[n % 2]
            status = statuses[n % len(statuses)]
            amount = 1_250 + 475 * n
            created = DAY + timedelta(days=n, hours=n % 5)
            if status != "failed":
                ledger.reserve(project.id, person.id, amount)
            db.session.add(
                Redemption(
                    project_id=project.id,
                    vendor_id=shop.id,
                    beneficiary_id=person.id,
                    amount=amount,
                    method="card" if n % 2 else "phone",
                    status=status,
                    code_expires_at=created + timedelta(minutes=5),
                    created_at=created,
                    settled_at=created + timedelta(seconds=20) if status == "settled" else None,
                )
            )
        db.session.commit()
        found = {"project": project.id, "shop": shops[0].id, "person": people[0].id}
        db.session.remove()
        db.engine.dispose()
    return found


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    url = sqlite_factory()
    folder = tmp_path_factory.mktemp("trail-stack")
    env = stack.portal_env(
        database_url=url,
        redis_url=redis_db.url,
        instance_dir=folder / "instance",
        secrets=portal_secrets,
        SOCKETIO_CHANNEL=f"portal-trail-{secrets.token_hex(4)}",
    )
    email, password = f"finance-{secrets.token_hex(4)}@example.org", "a-long-browser-password-7"
    stack.create_user(env, email, password, role="admin")
    seeded = _seed(url, redis_db, portal_secrets, tmp_path_factory, email)
    web = stack.WebServer(env, folder)
    try:
        web.start()
        web.wait_ready()
        yield {"base": web.base_url, "email": email, "password": password, **seeded}
    finally:
        web.stop()


@pytest.mark.parametrize("width", [1280, 375])
def test_redemptions_beneficiary_and_statement(chromium, portal, shots, width):
    base = portal["base"]
    context = chromium.new_context(
        viewport={"width": width, "height": 900}, is_mobile=width < 500, accept_downloads=True
    )
    page = context.new_page()
    sign_in(page, portal)

    page.goto(f"{base}/projects/{portal['project']}/redemptions")
    expect(page.get_by_role("heading", level=1)).to_have_text("Redemptions")
    expect(page.locator("table.trail tbody tr")).to_have_count(24)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(shots / f"trail-redemptions-{width}.png"), full_page=True)

    if not page.get_by_label("Vendor").is_visible():
        page.locator(".filter-box > summary").click()  # folded on phones
    page.get_by_label("Vendor").select_option(label="Laxmi Kirana Pasal")
    page.get_by_label("Status").select_option("settled")
    page.get_by_role("button", name="Show").click()
    rows = page.locator("table.trail tbody tr")
    expect(rows).to_have_count(9)  # the even days, settled
    for text in rows.locator("td:nth-child(3) a").all_inner_texts():
        assert text == "Laxmi Kirana Pasal"

    page.goto(f"{base}/beneficiaries/{portal['person']}")
    money = page.locator("section.money-trail")
    expect(money).to_contain_text("Entitled")
    expect(money).to_contain_text("NPR 5,000.00")
    expect(money).to_contain_text("Paid at")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(shots / f"trail-beneficiary-{width}.png"), full_page=True)

    page.goto(f"{base}/vendors/{portal['shop']}")
    page.get_by_role("link", name="Statement").click()
    page.get_by_label("From").fill("2026-11-01")
    page.get_by_label("To").fill("2026-11-30")
    page.screenshot(path=str(shots / f"trail-statement-form-{width}.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the PDF").click()
    pdf = download.value.path().read_bytes()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "Laxmi Kirana Pasal" in text and "Closing balance" in text
    assert "Sunita Chaudhary" not in text
    context.close()

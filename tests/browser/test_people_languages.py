"""People and projects pages in other languages, in a real browser: the beneficiary list (with
its selection script) and an import's report in Nepali, a project page in Arabic laid out right
to left, each at 375 and 1366 px, with nothing wider than the screen."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.support import stack, staff_browser

pytestmark = pytest.mark.browser
PHONE = {"width": 375, "height": 812}
DESKTOP = {"width": 1366, "height": 900}
DEVANAGARI = re.compile("[०-९]")
# What may be wider than the screen: a table scrolls inside its own box.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  return Array.from(document.querySelectorAll("body *")).filter((el) => {
    if (el.closest(".table-wrap")) return false;
    const box = el.getBoundingClientRect();
    // Wholly off-screen on purpose, to one side or the other (a skip link until focused).
    if (box.right <= 0 || box.left >= width) return false;
    return box.width > 0 && (box.right > width + 1 || box.left < -1);
  }).map((el) => el.tagName + "." + el.className).slice(0, 5);
}"""


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    from portal.extensions import db

    with stack.served_portal(
        database_url=sqlite_factory(),
        redis_url=redis_db.url,
        secrets=portal_secrets,
        folder=tmp_path_factory.mktemp("people-languages"),
        name="peoplelang",
    ) as served:
        with served["app"].app_context():
            served.update(prepare())
            db.session.remove()
        yield served


def prepare() -> dict:
    from sqlalchemy import select

    from portal.accounts.models import User
    from portal.beneficiaries import groups
    from portal.beneficiaries import services as beneficiaries
    from portal.extensions import db
    from portal.imports.models import READY, ImportBatch
    from portal.projects import services as projects

    admin = db.session.scalar(select(User).limit(1))
    project = projects.create(
        {"name": "Koshi flood response", "type": "cva", "location": "Sunsari, ward 4"}, admin
    )
    projects.change_status(project, "active")
    groups.create(project, "Ward 4 households", "Winter cash")
    for n in range(1, 5):
        beneficiaries.create(
            {"name": f"Gita Magar {n}", "phone": f"98457100{n:02d}", "language": "ne"},
            project=project,
        )
    # An import as the dry run leaves it: counts, and problems kept as codes and values.
    preview = [
        {"row": 3, "field": "phone", "message": "Not a phone number.", "code": "phone_not_number"},
        {
            "row": 6,
            "field": "phone",
            "message": "Same phone number as row 2.",
            "code": "same_phone_as_row",
            "values": {"row": 2},
        },
        {"row": 7, "field": "name", "message": "A name is required.", "code": "name_required"},
    ]
    batch = ImportBatch(
        project_id=project.id,
        created_by_id=admin.id,
        filename="ward4-households.csv",
        status=READY,
        headers_json=json.dumps(["Full name", "Mobile"]),
        mapping_json=json.dumps({"Full name": "name", "Mobile": "phone"}),
        total_rows=1250,
        new_rows=1247,
        duplicate_rows=1,
        invalid_rows=2,
        error_count=3,
        errors_preview_json=json.dumps(preview),
    )
    db.session.add(batch)
    db.session.commit()
    return {"project_id": project.id, "batch_id": batch.id}


def speak(page, base: str, language: str) -> None:
    """Choose the page language on the account page, as a person would."""
    page.goto(f"{base}/account")
    page.locator("select[name=locale]").select_option(language)
    page.locator("form[action$='/account/language'] button[type=submit]").click()
    expect(page.locator("html")).to_have_attribute("lang", language)


def fits(page) -> None:
    assert page.evaluate(OVERFLOW) == []


def test_people_pages_in_nepali_and_a_project_in_arabic(chromium, portal, shots):
    base = portal["base"]
    for viewport, name in ((DESKTOP, "1366"), (PHONE, "375")):
        context = chromium.new_context(viewport=viewport)
        page = context.new_page()
        staff_browser.sign_in_to(page, portal)
        speak(page, base, "ne")

        page.goto(f"{base}/beneficiaries/")
        expect(page.get_by_role("heading", level=1)).to_have_text("लाभग्राहीहरू")
        expect(page.locator("[data-selection-count]")).to_have_text("तलका बाकसबाट मानिसहरू छान्नुहोस्।")
        page.get_by_label("यो पानाका सबै छान्नुहोस्").check()
        # The script writes the count in Devanagari digits too.
        expect(page.locator("[data-selection-count]")).to_have_text("छानिएका मानिस: ४")
        fits(page)
        page.screenshot(path=str(shots / f"people-ne-list-{name}.png"), full_page=True)

        page.goto(f"{base}/imports/{portal['batch_id']}")
        expect(page.locator('[data-count="total"]')).to_have_text("१,२५०")
        expect(page.locator("table tbody")).to_contain_text("पङ्क्ति २ को जस्तै फोन नम्बर।")
        expect(page.get_by_role("button", name=re.compile("नयाँ व्यक्ति"))).to_contain_text("१,२४७")
        fits(page)
        page.screenshot(path=str(shots / f"people-ne-import-{name}.png"), full_page=True)

        speak(page, base, "ar")
        page.goto(f"{base}/projects/{portal['project_id']}")
        expect(page.locator("html")).to_have_attribute("dir", "rtl")
        expect(page.locator("main")).to_contain_text("نبذة")
        expect(page.locator("main")).to_contain_text("المجموعات")
        fits(page)
        page.screenshot(path=str(shots / f"people-ar-project-{name}.png"), full_page=True)
        speak(page, base, "en")
        context.close()

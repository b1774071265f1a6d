"""Bulk onboarding in a real browser: a file with errors, its report, the fixed file, the import
with its progress bar filling live, and the people in the list afterwards."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.test_staff_flow import sign_in

pytestmark = pytest.mark.browser
ROWS = 20_000  # enough for the commit to take a few seconds, so its progress can be watched


def write_csv(path, *, broken: bool) -> None:
    lines = ["Full name,Mobile,Citizenship No,DOB,Village"]
    for i in range(ROWS):
        phone = f"98{60000000 + i:08d}"
        lines.append(f"Person {i},{phone},NPX{i:07d},1990-01-02,Ward {i % 9}")
    if broken:
        lines[3] = "Bad Phone,12345,,1990-01-02,Ward 1"  # row 4
        lines[7] = lines[2].replace("Person 1,", "Same As Row 3,")  # row 8: same phone as row 3
    path.write_text("\n".join(lines) + "\n")


def upload(page, base, project_name, path):
    page.goto(f"{base}/imports/new")
    page.get_by_label("File (CSV or Excel .xlsx, required)").set_input_files(str(path))
    page.get_by_label("Project").select_option(label=project_name)
    page.locator("#source").fill("District survey")
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Match the columns")


def test_fix_a_file_then_watch_the_import_finish(chromium, live_portal, shots, tmp_path):
    base = live_portal["base"]
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    sign_in(page, live_portal)
    page.goto(f"{base}/projects/new")
    page.get_by_label("Name").fill("Flood response")
    page.get_by_role("button", name="Create project").click()

    broken, fixed = tmp_path / "broken.csv", tmp_path / "fixed.csv"
    write_csv(broken, broken=True)
    write_csv(fixed, broken=False)

    upload(page, base, "Flood response", broken)
    expect(page.locator("#map-1")).to_have_value("phone")  # guessed from "Mobile"
    page.get_by_role("button", name="Check the file").click()
    root = page.locator("#import")
    expect(root).to_have_attribute("data-status", "ready", timeout=60_000)
    expect(page.locator('[data-count="invalid"]')).to_have_text("1")
    expect(page.locator('[data-count="duplicates"]')).to_have_text("1")
    problems = page.locator("table tbody tr")
    expect(problems.first).to_contain_text("Not a valid phone number")
    page.screenshot(path=str(shots / "import-problems.png"), full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the full report").click()
    report = Path(download.value.path()).read_text()
    assert report.splitlines()[0] == "row,field,message"
    assert re.search(r"^4,phone,", report, re.M) and "Same phone number as row 3" in report

    # With problems, the one button says what it would do (skip them); the user fixes the file
    # instead and discards this upload.
    expect(page.get_by_role("button", name=re.compile("new people"))).to_contain_text("skip 2 rows")
    page.get_by_role("button", name="Discard").click()

    upload(page, base, "Flood response", fixed)
    expect(page.locator("#map-1")).to_have_value("phone")  # remembered for the source
    page.get_by_role("button", name="Check the file").click()
    expect(root).to_have_attribute("data-status", "ready", timeout=60_000)
    expect(page.locator('[data-count="new"]')).to_have_text(f"{ROWS:,}")

    page.get_by_role("button", name=f"Import {ROWS:,} new people").click()
    # The bar fills while the worker saves; the page then shows the result by itself.
    expect(page.locator("#progress-text")).to_contain_text("%", timeout=30_000)
    page.screenshot(path=str(shots / "import-progress.png"), full_page=True)
    expect(root).to_have_attribute("data-status", "committed", timeout=120_000)
    expect(page.locator(".flash--success")).to_contain_text(f"{ROWS:,} beneficiaries were added")
    page.screenshot(path=str(shots / "import-done.png"), full_page=True)

    page.get_by_role("link", name="See them").click()
    # Past 10,000 rows the list stops counting exactly (the count would cost more than the page).
    expect(page.locator(".pager")).to_contain_text(
        re.compile(rf"(more than 10,000|about [\d,]+|{ROWS:,}) in all")
    )
    context.close()

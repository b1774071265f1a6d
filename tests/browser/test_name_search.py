"""Finding people by name in a real browser, at 1366 px and 375 px: a name typed in Devanagari
finds the Latin spelling and the other way round; a selection from the list goes into a
group (with each person's outcome) and out of it again after a confirmation."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support import staff_browser

pytestmark = pytest.mark.browser


def _no_sideways_scroll(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert width <= 1, f"the page scrolls sideways by {width}px"


def _enrol(page, base: str, project_id: int, name: str, phone: str, place: str) -> None:
    page.goto(f"{base}/beneficiaries/new?project={project_id}")
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Phone number").fill(phone)
    page.get_by_label("Location (village, ward)").fill(place)
    page.get_by_role("button", name="Enrol").click()
    expect(page.locator(".flash--success")).to_contain_text("enrolled")


@pytest.fixture(scope="module")
def people(chromium, live_portal):
    """A project, a group, and three people (two called Gita, one written in Devanagari)."""
    base = live_portal["base"]
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    staff_browser.sign_in_to(page, live_portal)
    page.goto(f"{base}/projects/new")
    page.get_by_label("Name").fill("Flood relief Saptari")
    page.get_by_label("Type").select_option("cash")
    page.get_by_label("Area").fill("Saptari")
    page.get_by_role("button", name="Create project").click()
    project_id = int(re.search(r"/projects/(\d+)", page.url).group(1))
    page.goto(f"{base}/groups/new?project={project_id}")
    page.get_by_label("Name").fill("Ward 4 households")
    page.get_by_label("Purpose").fill("First cash transfer")
    page.get_by_role("button", name="Create group").click()
    expect(page.locator(".flash--success")).to_contain_text("created")
    _enrol(page, base, project_id, "Gita Magar", "9841300001", "Rajbiraj ward 4")
    _enrol(page, base, project_id, "गीता थापा", "9841300002", "राजविराज")
    _enrol(page, base, project_id, "Sita Rai", "9841300003", "Kanchanrup")
    context.close()
    return {"project_id": project_id}


@pytest.mark.parametrize("width", [1366, 375])
def test_search_by_name_and_add_a_selection_to_a_group(chromium, live_portal, people, width):
    base = live_portal["base"]
    context = chromium.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    staff_browser.sign_in_to(page, live_portal)

    # Devanagari finds the Latin spelling, Latin the Devanagari one; words in any order.
    page.goto(f"{base}/beneficiaries/")
    search = page.get_by_label("Name, place, phone, national ID or reference")
    if not search.is_visible():  # on a phone the filters start folded
        page.locator(".filter-box > summary").click()
    search.fill("गीता")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.people tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("table.people")).to_contain_text("Gita Magar")
    expect(page.locator("table.people")).to_contain_text("गीता थापा")
    page.goto(f"{base}/beneficiaries/?q=thapa+gi")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("गीता थापा")
    page.goto(f"{base}/beneficiaries/?q=rajbiraj")  # the place, in either script
    expect(rows).to_have_count(2)
    page.goto(f"{base}/beneficiaries/?q=gita")
    expect(rows).to_have_count(2)
    _no_sideways_scroll(page)
    page.screenshot(path=f"/tmp/search11-shots/search-{width}.png", full_page=True)

    # Select all on this page, add to the group: each person's outcome is shown.
    page.get_by_label("Select all on this page").check()
    expect(page.locator("[data-selection-count]")).to_have_text("People chosen: 2")
    page.get_by_label("With the people chosen").select_option("add")
    page.get_by_label("Group or project").select_option(
        label="Ward 4 households (Flood relief Saptari)"
    )
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ward 4 households")
    outcomes = page.locator("[data-outcome]")
    expect(outcomes).to_have_count(2)
    if width == 1366:
        expect(page.locator('[data-outcome="done"]')).to_contain_text(["Added.", "Added."])
    else:  # the first run added them already
        expect(page.locator('[data-outcome="done"]')).to_contain_text(
            ["Already in it.", "Already in it."]
        )
    _no_sideways_scroll(page)
    page.screenshot(path=f"/tmp/search11-shots/added-{width}.png", full_page=True)

    # Back on the list, the group shows beside each; and Sita is in none.
    page.get_by_role("link", name="Back to the list").click()
    expect(rows).to_have_count(2)
    for k in range(2):
        expect(rows.nth(k)).to_contain_text("Ward 4 households")
    page.goto(f"{base}/beneficiaries/?q=sita")
    expect(rows.first).to_contain_text("Flood relief Saptari")
    expect(rows.first).not_to_contain_text("Ward 4 households")
    context.close()


def test_removing_a_selection_asks_first(chromium, live_portal, people):
    base = live_portal["base"]
    context = chromium.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    staff_browser.sign_in_to(page, live_portal)
    page.goto(f"{base}/beneficiaries/?q=magar")
    rows = page.locator("table.people tbody tr")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("checkbox").check()
    page.get_by_label("With the people chosen").select_option("remove")
    page.get_by_label("Group or project").select_option(
        label="Ward 4 households (Flood relief Saptari)"
    )
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Remove 1 person from group Ward 4 households (Flood relief Saptari)?"
    )
    _no_sideways_scroll(page)
    page.screenshot(path="/tmp/search11-shots/remove-confirm-375.png", full_page=True)
    page.get_by_role("button", name="Remove them").click()
    expect(page.locator('[data-outcome="done"]')).to_have_text(re.compile("Removed."))
    page.get_by_role("link", name="Back to the list").click()
    expect(rows.first).not_to_contain_text("Ward 4 households")
    context.close()

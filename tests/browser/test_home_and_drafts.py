"""The home page and the pages that no longer end in a dead end, in a real browser at 1366 and
375 px: a project's figures and getting-started steps, a disbursement draft larger than the
funds (its shortfall, Start refused on the page, Change the draft), its people list, the confirm
step without JavaScript, the project's status moves, and the import form keeping its file."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from tests.browser.test_staff_flow import sign_in
from tests.support import pg_race, stack

pytestmark = pytest.mark.browser

CSV = "Full name,Mobile\nSita Rai,9841000001\nRam Thapa,9841000002\n"


def _seed(url, redis_db, portal_secrets, tmp_path_factory, email: str) -> dict:
    from sqlalchemy import update

    from config import Config
    from portal import create_app
    from portal.accounts.models import User
    from portal.beneficiaries import groups
    from portal.beneficiaries import services as beneficiaries
    from portal.chain.models import ProjectChain
    from portal.disbursements import services as disbursements
    from portal.extensions import db
    from portal.ledger import entitlements as ledger
    from portal.projects import services as projects
    from portal.redemptions.models import Redemption
    from portal.timeutil import utcnow
    from portal.vendors import services as vendors
    from tests.support import chain

    options = pg_race.app_settings(url, redis_db, portal_secrets, tmp_path_factory)
    app = create_app(Config, role="worker", **options)
    with app.app_context():
        admin = db.session.query(User).filter_by(email=email).one()
        fresh = projects.create({"name": "Winter Relief 2027", "type": "cva"}, admin)
        project = projects.create({"name": "Monsoon cash for food", "type": "cva"}, admin)
        projects.change_status(project, "active")
        chain.pretend_deployed(project, symbol="WR26", decimals=2)
        db.session.flush()
        db.session.execute(
            update(ProjectChain)
            .where(ProjectChain.project_id == project.id)
            .values(funded=2_000_000)
        )
        shop = vendors.register(
            {
                "name": "Laxmi Kirana Pasal",
                "phone": "9801000001",
                "category": "shop",
                "contact_name": "Owner",
            },
            project=project,
        )
        people = [
            beneficiaries.create({"name": f"Person {n}", "phone": f"98410{n:05d}"}, project=project)
            for n in range(1, 61)
        ]
        group = groups.create(project, "Ward 3", "food basket")
        groups.add_members(group, people)
        ledger.credit(project.id, [(p.id, "0x" + "ab" * 20, 25_000) for p in people[:40]])
        now = utcnow()
        for n, person in enumerate(people[:12]):
            ledger.reserve(project.id, person.id, 1_500)
            db.session.add(
                Redemption(
                    project_id=project.id,
                    vendor_id=shop.id,
                    beneficiary_id=person.id,
                    amount=1_500,
                    method="phone",
                    status="settled",
                    code_expires_at=now + timedelta(minutes=5),
                    created_at=now - timedelta(minutes=n),
                    confirmed_at=now,
                    settled_at=now - timedelta(minutes=n),
                )
            )
        draft, _ = disbursements.create(
            project,
            title="November food basket",
            amount=50_000,
            group_id=group.id,
            beneficiary_ids=None,
            batch_size=25,
            user_id=admin.id,
        )
        db.session.commit()
        found = {
            "fresh": fresh.id,
            "project": project.id,
            "draft": draft.id,
            "group": group.id,
            "person": people[0].id,
            "ref": people[0].ref,
        }
        db.session.remove()
        db.engine.dispose()
    return found


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    url = sqlite_factory()
    folder = tmp_path_factory.mktemp("home-stack")
    env = stack.portal_env(
        database_url=url,
        redis_url=redis_db.url,
        instance_dir=folder / "instance",
        secrets=portal_secrets,
        SOCKETIO_CHANNEL=f"portal-home-{secrets.token_hex(4)}",
    )
    email, password = f"manager-{secrets.token_hex(4)}@example.org", "a-long-browser-password-7"
    stack.create_user(env, email, password, role="admin")
    stack.enrol_two_factor(env, email)
    seeded = _seed(url, redis_db, portal_secrets, tmp_path_factory, email)
    web = stack.WebServer(env, folder)
    try:
        web.start()
        web.wait_ready()
        yield {"base": web.base_url, "email": email, "password": password, **seeded}
    finally:
        web.stop()


def _fits(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.mark.parametrize("width", [1366, 375])
def test_home_draft_shortfall_people_and_confirm_steps(chromium, portal, shots, width):
    base = portal["base"]
    context = chromium.new_context(viewport={"width": width, "height": 900}, is_mobile=width < 500)
    page = context.new_page()
    sign_in(page, portal)

    # Home: the running project's figures, the new one's steps.
    running = page.locator(f"#project-{portal['project']}")
    expect(running.locator('[data-figure="funded"]')).to_have_text("NPR\u00a020,000.00")
    expect(running.locator('[data-figure="allocated"]')).to_have_text("NPR\u00a010,000.00")
    expect(running.locator('[data-figure="spent"]')).to_contain_text("NPR\u00a0180.00")
    expect(running.locator('[data-figure="today"]')).to_contain_text("12 payments")
    fresh = page.locator(f"#project-{portal['fresh']}")
    expect(fresh.locator('[data-step="enrol"]')).to_have_attribute("data-done", "no")
    expect(fresh.get_by_role("link", name="Fund the project")).to_be_visible()
    _fits(page, width)
    page.screenshot(path=str(shots / f"home-{width}.png"), full_page=True)

    # The draft asks for 60 x 500.00 = 30,000.00 of 20,000.00: its page says so before Start.
    page.goto(f"{base}/disbursements/{portal['draft']}")
    expect(page.locator("#d-to")).to_contain_text("Ward 3")
    expect(page.locator("#shortfall")).to_contain_text("Needs NPR\u00a010,000.00 more")
    expect(page.locator("#people-table tbody tr")).to_have_count(50)
    _fits(page, width)
    page.screenshot(path=str(shots / f"draft-shortfall-{width}.png"), full_page=True)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Start allocation").click()
    expect(page.locator("#start-refused")).to_contain_text(
        "needs NPR\u00a010,000.00 more: fund the project or reduce the amount"
    )
    expect(page.get_by_role("heading", level=1)).to_contain_text("November food basket")
    page.screenshot(path=str(shots / f"draft-start-refused-{width}.png"), full_page=True)

    # Reduce the amount: the draft now fits and the shortfall is gone.
    page.get_by_role("link", name="Reduce the amount").click()
    page.get_by_label("Amount per person").fill("300")
    _fits(page, width)
    page.screenshot(path=str(shots / f"draft-edit-{width}.png"), full_page=True)
    page.get_by_role("button", name="Save the draft").click()
    expect(page.locator("#shortfall")).to_have_count(0)
    expect(page.get_by_role("button", name="Start allocation")).to_be_visible()
    # Put it back for the other width.
    page.get_by_role("link", name="Change the draft").click()
    page.get_by_label("Amount per person").fill("500")
    page.get_by_role("button", name="Save the draft").click()
    expect(page.locator("#shortfall")).to_be_visible()

    # The project's status moves say what they do.
    page.goto(f"{base}/projects/{portal['fresh']}")
    expect(page.get_by_role("button", name="Activate the project")).to_be_visible()
    expect(page.get_by_role("button", name="Close the project")).to_be_visible()
    _fits(page, width)
    page.screenshot(path=str(shots / f"project-status-{width}.png"), full_page=True)
    context.close()


@pytest.mark.parametrize("width", [1366, 375])
def test_confirm_page_without_javascript_and_the_import_keeps_its_file(
    chromium, portal, shots, width, tmp_path
):
    base = portal["base"]
    context = chromium.new_context(
        viewport={"width": width, "height": 900}, is_mobile=width < 500, java_script_enabled=False
    )
    page = context.new_page()
    sign_in(page, portal)

    # Removing a person from a group: without JavaScript the confirm step is a page.
    page.goto(f"{base}/groups/{portal['group']}")
    row = page.locator("tbody tr").first
    ref = row.locator("td a").first.inner_text()
    row.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        f"Remove {ref} from the group Ward 3?"
    )
    _fits(page, width)
    page.screenshot(path=str(shots / f"confirm-remove-{width}.png"), full_page=True)
    page.get_by_role("link", name="Back, change nothing").click()
    expect(page.locator("tr", has_text=ref)).to_have_count(1)

    # The import form: Source left empty, the chosen file is kept for the next attempt.
    listing = tmp_path / "ward3.csv"
    listing.write_text(CSV)
    page.goto(f"{base}/imports/new")
    expect(page.get_by_text("Source (required)")).to_be_visible()
    page.get_by_label("File (CSV or Excel .xlsx, required)").set_input_files(str(listing))
    page.get_by_label("Project").select_option(str(portal["project"]))
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.locator("#kept-file")).to_contain_text("ward3.csv")
    _fits(page, width)
    page.screenshot(path=str(shots / f"import-kept-file-{width}.png"), full_page=True)
    page.get_by_label("Source (required)").fill(f"Ward 3 list {width}")
    page.get_by_role("button", name="Upload and continue").click()
    expect(page).to_have_url(re.compile(r"/imports/\d+/mapping"))
    context.close()

"""Plain words in a real browser, at 1366 and 375 px: a programme manager (no
``chain.details.read``) sees money in the project's currency and no chain detail; an admin finds
the addresses under "On-chain details". The job, audit and account pages read as sentences,
names and "Chrome on Android"."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.support import pg_race, stack
from tests.support.staff_browser import sign_in

pytestmark = pytest.mark.browser

PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 13; SM-A145F) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
CHAIN_TEXT = re.compile(r"0x[0-9a-fA-F]{6,}|\bWR26\b|\bERC-?20\b|\bnonce\b|\bgwei\b|\bmint\b", re.I)


def _seed(url, redis_db, portal_secrets, tmp_path_factory, admin_email, manager_email) -> dict:
    from config import Config
    from portal import create_app
    from portal.accounts.models import User
    from portal.chain.models import Funding
    from portal.extensions import db
    from portal.jobs.models import FAILED, Job, JobAttempt
    from portal.projects import services as projects
    from portal.timeutil import utcnow
    from portal.vendors import services as vendors
    from tests.support import chain

    options = pg_race.app_settings(url, redis_db, portal_secrets, tmp_path_factory)
    app = create_app(Config, role="worker", **options)
    with app.app_context():
        admin = db.session.query(User).filter_by(email=admin_email).one()
        manager = db.session.query(User).filter_by(email=manager_email).one()
        project = projects.create({"name": "Winter relief 2026", "type": "cva"}, admin)
        projects.change_status(project, "active")
        projects.set_members(project, {admin.id, manager.id})
        pc = chain.pretend_deployed(project, symbol="WR26", decimals=2)
        pc.funded = 150_000_00
        db.session.add(
            Funding(project_id=project.id, amount=150_000_00, status="confirmed", note="ECHO")
        )
        vendors.register(
            {
                "name": "Laxmi Kirana Pasal",
                "phone": "9801000001",
                "category": "shop",
                "contact_name": "Owner",
            },
            project=project,
        )
        # A job that failed as the lifecycle leaves one: technical error and its sentence.
        now = utcnow()
        job = Job(
            kind="system.diagnostic",
            queue="default",
            status=FAILED,
            attempts=1,
            max_attempts=1,
            error="DiagnosticFailure: Failing on purpose: try 1 of the 1 asked to fail.\n"
            "  at system.py:27 in diagnostic",
            problem="Failing on purpose: try 1 of the 1 asked to fail.",
            created_by_id=manager.id,
            project_id=project.id,
            finished_at=now,
        )
        db.session.add(job)
        db.session.flush()
        db.session.add(
            JobAttempt(
                job_id=job.id,
                number=1,
                started_at=now,
                finished_at=now,
                outcome=FAILED,
                error=job.error,
                problem=job.problem,
            )
        )
        db.session.commit()
        found = {"project": project.id, "job": job.id}
        db.session.remove()
        db.engine.dispose()
    return found


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    url = sqlite_factory()
    folder = tmp_path_factory.mktemp("words-stack")
    env = stack.portal_env(
        database_url=url,
        redis_url=redis_db.url,
        instance_dir=folder / "instance",
        secrets=portal_secrets,
        SOCKETIO_CHANNEL=f"portal-words-{secrets.token_hex(4)}",
    )
    password = "a-long-browser-password-7"
    admin = f"admin-{secrets.token_hex(4)}@example.org"
    manager = f"manager-{secrets.token_hex(4)}@example.org"
    stack.create_user(env, admin, password, role="admin")
    stack.create_user(env, manager, password, role="programme manager")
    stack.enrol_two_factor(env, admin)
    stack.enrol_two_factor(env, manager)
    seeded = _seed(url, redis_db, portal_secrets, tmp_path_factory, admin, manager)
    web = stack.WebServer(env, folder)
    try:
        web.start()
        web.wait_ready()
        yield {
            "base": web.base_url,
            "password": password,
            "admin": admin,
            "manager": manager,
            **seeded,
        }
    finally:
        web.stop()


def _page(chromium, portal, who: str, width: int):
    context = chromium.new_context(
        viewport={"width": width, "height": 900}, is_mobile=width < 500, user_agent=PHONE_UA
    )
    page = context.new_page()
    sign_in(page, portal["base"], portal[who], portal["password"])
    return context, page


def _fits(page, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width, page.url


@pytest.mark.parametrize("width", [1366, 375])
def test_a_programme_manager_reads_money_in_the_currency_and_no_chain_words(
    chromium, portal, shots, width
):
    base, project = portal["base"], portal["project"]
    context, page = _page(chromium, portal, "manager", width)
    page.goto(f"{base}/projects/{project}/chain")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Funding")
    expect(page.locator(".stat").first).to_contain_text("NPR 150,000.00")
    body = page.locator("main").inner_text()
    assert not CHAIN_TEXT.search(body), CHAIN_TEXT.search(body)
    assert page.locator("details.onchain").count() == 0
    assert page.get_by_role("link", name="Transactions").count() == 0
    _fits(page, width)
    page.screenshot(path=str(shots / f"words-funding-manager-{width}.png"), full_page=True)

    page.goto(f"{base}/jobs/{portal['job']}")
    expect(page.locator("[data-field=problem]").first).to_have_text(
        "Failing on purpose: try 1 of the 1 asked to fail."
    )
    assert "DiagnosticFailure" not in page.locator("main").inner_text()
    _fits(page, width)
    page.screenshot(path=str(shots / f"words-job-manager-{width}.png"), full_page=True)

    page.goto(f"{base}/audit/")
    body = page.locator("main").inner_text()
    assert "Project “Winter relief 2026” created" in body
    assert not re.search(r"\buser:\d+", body)
    _fits(page, width)
    page.screenshot(path=str(shots / f"words-audit-manager-{width}.png"), full_page=True)

    page.goto(f"{base}/account")
    expect(page.locator("main")).to_contain_text("Chrome on Android")
    raw = page.locator("details.raw-agent").first
    expect(raw.locator(".mono")).to_be_hidden()
    raw.locator("summary").click()
    expect(raw.locator(".mono")).to_contain_text("AppleWebKit")
    _fits(page, width)
    page.screenshot(path=str(shots / f"words-account-{width}.png"), full_page=True)
    context.close()


@pytest.mark.parametrize("width", [1366, 375])
def test_an_admin_finds_the_chain_under_on_chain_details(chromium, portal, shots, width):
    base, project = portal["base"], portal["project"]
    context, page = _page(chromium, portal, "admin", width)
    page.goto(f"{base}/projects/{project}/chain")
    details = page.locator("details.onchain").first
    expect(details.locator("summary")).to_have_text("On-chain details")
    expect(details.locator("dd").first).to_be_hidden()
    details.locator("summary").click()
    expect(details).to_contain_text("0x" + "11" * 20)
    expect(details).to_contain_text("WR26")
    _fits(page, width)
    page.screenshot(path=str(shots / f"words-funding-admin-{width}.png"), full_page=True)

    page.goto(f"{base}/jobs/{portal['job']}")
    technical = page.locator("details.technical").first
    technical.locator("summary").click()
    expect(technical).to_contain_text("DiagnosticFailure: Failing on purpose")
    _fits(page, width)
    page.screenshot(path=str(shots / f"words-job-admin-{width}.png"), full_page=True)
    expect(page.get_by_role("link", name="‹ Jobs")).to_be_visible()
    page.goto(f"{base}/projects/{project}/transactions")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Transactions")
    context.close()

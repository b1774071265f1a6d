"""Grievances in a real browser: the staff list and a case at 1366 px and on a 375 px phone,
a new message from the SMS webhook appearing on the open list, a status change showing live
on an open case, and a vendor reporting a problem on the phone. Screenshots go to
ARTIFACTS_DIR."""

from __future__ import annotations

import re
import urllib.request
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from tests.browser.test_vendor_phone import staff_outbox, vendor_sign_in
from tests.support import staff_browser

pytestmark = pytest.mark.browser
PHONE = {"width": 375, "height": 812}
VENDOR_PHONE = "9805700077"
PERSON_PHONE = "9845700011"
TOKEN = "browser-inbound-token"
PUBLIC = "http://portal.test"
IDS: dict[str, object] = {}


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    from portal.extensions import db
    from tests.support import stack

    folder = tmp_path_factory.mktemp("grievance-stack")
    with stack.served_portal(
        database_url=sqlite_factory(),
        redis_url=redis_db.url,
        secrets=portal_secrets,
        folder=folder,
        name="grievances",
        # The provider signs the address it was given, the portal's public one (a proxy's).
        PUBLIC_BASE_URL=PUBLIC,
        INBOUND_SMS_AUTH_TOKEN=TOKEN,
    ) as served:
        with served["app"].app_context():
            prepare()
            db.session.remove()
        yield served


def prepare() -> None:
    from portal.accounts import services as accounts
    from portal.beneficiaries import services as beneficiaries
    from portal.extensions import db
    from portal.grievances import services
    from portal.projects import services as projects
    from portal.timeutil import utcnow
    from portal.vendors import services as vendors

    admin = accounts.role_by_name("admin")
    user = accounts.create_user("griev-prep@example.org", "Sita Sharma", "a-long-prep-pw-77", admin)
    project = projects.create({"name": "Flood relief", "type": "cva", "currency": "NPR"}, user)
    projects.change_status(project, "active")
    person = beneficiaries.create(
        {"name": "Hari Prasad", "phone": PERSON_PHONE, "language": "ne"}, project=project
    )
    vendor = vendors.register(
        {"name": "Hill Grocers", "phone": VENDOR_PHONE, "category": "shop", "contact_name": "Maya"},
        project,
    )
    vendors.change_status(vendor, "approved")
    first = services.open_grievance(
        "sms",
        "The shop asked me to pay extra for rice.",
        type_="vendor",
        priority="high",
        beneficiary=person,
    )
    services.update(
        first,
        type_="vendor",
        priority="high",
        due_on=(utcnow() - timedelta(days=2)).date(),
        assignee_id=user.id,
        actor=user,
    )
    services.add_note(first, "Called the shop; they will refund.", user)
    second = services.open_grievance(
        "staff", "Name misspelt on the card.", type_="registration", beneficiary=person
    )
    db.session.commit()
    IDS.update(project=project.id, person=person.id, first=first.id, second=second.id)


def _staff(chromium, portal, width):
    context = chromium.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    staff_browser.sign_in_to(page, portal, home=False)
    return context, page


def _inbound(portal, sid: str, body: str) -> int:
    from portal.comms.signatures import twilio_signature

    params = {"MessageSid": sid, "From": "+977" + PERSON_PHONE, "Body": body}
    request = urllib.request.Request(  # noqa: S310 (the local test server)
        portal["base"] + "/api/inbound/sms",
        data=urlencode(params).encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": twilio_signature(
                PUBLIC + "/api/inbound/sms", params.items(), TOKEN
            ),
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status


@pytest.mark.parametrize("width", [1366, 375])
def test_staff_list_and_case(chromium, portal, shots, width):
    context, page = _staff(chromium, portal, width)
    base = portal["base"]
    page.goto(f"{base}/grievances/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Grievances")
    rows = page.locator("#grievances-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td").first).to_have_text(re.compile(r"^G[0-9A-Z]{7}$"))
    expect(page.locator(".overdue")).to_contain_text("overdue")
    assert "Hari" not in page.content()  # names never in the list
    width_now = page.evaluate("document.documentElement.scrollWidth")
    assert width_now <= width, f"the list is {width_now}px wide at {width}px"
    page.screenshot(path=str(shots / f"grievances-list-{width}.png"), full_page=True)
    page.goto(f"{base}/grievances/?overdue=1")
    expect(page.locator("#grievances-table tbody tr")).to_have_count(1)
    page.goto(f"{base}/grievances/{IDS['first']}")
    expect(page.locator(".grievance-text")).to_contain_text("pay extra for rice")
    expect(page.locator("#thread")).to_contain_text("Called the shop")
    expect(page.locator("#grievance-detail [data-field=status] .badge")).to_have_text("Assigned")
    width_now = page.evaluate("document.documentElement.scrollWidth")
    assert width_now <= width, f"the case is {width_now}px wide at {width}px"
    page.screenshot(path=str(shots / f"grievances-case-{width}.png"), full_page=True)
    context.close()


def test_a_new_sms_and_a_status_change_show_live(chromium, portal, shots):
    from portal.accounts.models import User
    from portal.extensions import db
    from portal.grievances import services
    from portal.grievances.models import Grievance

    context, page = _staff(chromium, portal, 1366)
    base = portal["base"]
    page.goto(f"{base}/grievances/")
    page.wait_for_timeout(800)  # the page's socket has subscribed
    assert _inbound(portal, "SMbrowser1", "No rice at the shop this week") == 200
    expect(page.locator("#grievances-new")).to_be_visible(timeout=20_000)
    page.screenshot(path=str(shots / "grievances-live-new-1366.png"), full_page=True)

    page.goto(f"{base}/grievances/{IDS['second']}")
    page.wait_for_timeout(800)
    app = portal["app"]
    with app.app_context():
        g = db.session.get(Grievance, IDS["second"])
        actor = db.session.scalar(db.select(User).where(User.email == "griev-prep@example.org"))
        g.assignee_id = actor.id
        services.change_status(g, "assigned", actor)
        db.session.commit()
        db.session.remove()
    expect(page.locator("#grievance-detail [data-field=status] .badge")).to_have_text(
        "Assigned", timeout=20_000
    )
    expect(page.locator("#grievance-changed")).to_be_visible()
    page.screenshot(path=str(shots / "grievances-live-status-1366.png"), full_page=True)
    context.close()


def test_vendor_reports_a_problem_on_the_phone(chromium, portal, shots):
    staff, outbox = staff_outbox(chromium, portal)
    phone = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = phone.new_page()
    vendor_sign_in(page, outbox, portal["base"], phone=VENDOR_PHONE)
    page.get_by_role("link", name="Report a problem").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Report a problem")
    page.get_by_role("button", name="Send to the programme team").click()
    expect(page.locator(".field--error .error")).to_contain_text("Say what happened")
    page.screenshot(path=str(shots / "vendor-problem-error-375.png"), full_page=True)
    page.get_by_label("What is it about").select_option("payment")
    page.get_by_label("What happened").fill("A customer's code did not arrive twice today.")
    page.get_by_role("button", name="Send to the programme team").click()
    expect(page.locator(".flash--success")).to_contain_text("Your report is G")
    expect(page.locator(".v-report")).to_have_count(1)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the report page is {width}px wide"
    page.screenshot(path=str(shots / "vendor-problem-375.png"), full_page=True)
    phone.close()
    staff.close()

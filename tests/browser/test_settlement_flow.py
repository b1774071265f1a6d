"""A vendor cashes out on the phone (375 px) and watches it turn Paid without a reload. The
amount is above the project's approval threshold: finance approves it in one browser, a second
approver releases it in another, the served portal's worker burns it on the embedded chain,
sends the mobile-money transfer to the local provider, and the provider's callback (heard, then
checked by a status query) pays it. Finance then uploads the provider's statement and the
settlement turns Reconciled on its page. Staff pages at 1280 and 375 px as well. Screenshots go
to ARTIFACTS_DIR."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_vendor_phone import (
    newest_message_id,
    read_code,
    staff_outbox,
    staff_sign_in,
    wait_until,
)
from tests.support import stack

pytestmark = pytest.mark.browser
PHONE = {"width": 375, "height": 812}
VENDOR_PHONE, PERSON_PHONE = "9805600091", "9845600091"
VENDOR_MOMO = "+9779841000091"
IDS: dict[str, int] = {}
# The second approver (a "finance approver" member of the project), made by prepare().
APPROVER = {"email": "second-approver@example.org", "password": "Kettle-orbit-53-quarry-lamp"}
THRESHOLD = 1_000  # base units: a second approver is needed above 10.00


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    from eth_account import Account

    from portal.extensions import db

    # One treasury key for the served portal and this process (which deploys and funds), as
    # production gives it: otherwise each would make its own development key file.
    treasury = Account.create().key.to_0x_hex()
    with stack.served_portal(
        database_url=sqlite_factory(),
        redis_url=redis_db.url,
        secrets=portal_secrets,
        folder=tmp_path_factory.mktemp("settlement-stack"),
        name="settlement",
        OUTBOUND_PRIVATE_HOSTS="127.0.0.1",
        PAYOUT_CHECK_AFTER_SECONDS="600",  # only the callback ends the payout here
        CHAIN_TREASURY_KEY=treasury,
    ) as served:
        served["app"].config["CHAIN_TREASURY_KEY"] = treasury
        with served["app"].app_context():
            prepare()
            db.session.remove()
        yield served


def prepare() -> None:
    """A deployed, funded project; a beneficiary allocated 40.00 who paid the vendor 25.00 (on
    chain); the vendor's mobile-money number."""
    import re

    from sqlalchemy import select

    from portal.accounts import services as accounts
    from portal.accounts.models import User
    from portal.approvals import services as approvals
    from portal.beneficiaries import services as beneficiaries
    from portal.chain import setup
    from portal.comms.models import OutboxMessage
    from portal.disbursements import services as disbursements
    from portal.disbursements.models import Disbursement
    from portal.extensions import db
    from portal.payouts import methods
    from portal.projects import services as projects
    from portal.projects.models import Project
    from portal.redemptions import services as redemptions
    from portal.redemptions.models import SETTLED, Redemption
    from portal.vendors import services as vendors
    from portal.vendors.models import Vendor

    admin = db.session.scalar(select(User).limit(1))
    project = projects.create({"name": "Koshi cash-outs", "type": "cva"}, admin)
    projects.change_status(project, "active")
    second = accounts.create_user(
        APPROVER["email"],
        "Second Approver",
        APPROVER["password"],
        accounts.role_by_name("finance approver"),
    )
    projects.set_members(project, {admin.id, second.id})
    approvals.set_threshold(project, THRESHOLD, admin.id)
    person = beneficiaries.create({"name": "Cash Person", "phone": PERSON_PHONE}, project=project)
    shop = vendors.register(
        {"name": "River Shop", "phone": VENDOR_PHONE, "category": "shop", "contact_name": "O"},
        project=project,
    )
    vendors.change_status(shop, "approved")
    methods.add(shop, {"kind": "momo", "account_name": "River Shop", "account_number": VENDOR_MOMO})
    setup.start_deploy(project, "AID", 2, None)
    db.session.commit()
    project_id, person_id, shop_id = project.id, person.id, shop.id
    wait_until(lambda: setup.state(project_id).status == "deployed", "deployment")
    setup.start_funding(db.session.get(Project, project_id), 50_000, "test", None)
    db.session.commit()
    wait_until(lambda: setup.state(project_id).funded == 50_000, "funding")
    allocation, _ = disbursements.create(
        db.session.get(Project, project_id),
        title="First round",
        amount=4_000,
        group_id=None,
        beneficiary_ids=[person_id],
        batch_size=10,
        user_id=None,
    )
    disbursements.start(allocation, None)
    db.session.commit()
    allocation_id = allocation.id
    wait_until(
        lambda: db.session.get(Disbursement, allocation_id).status == "completed", "allocation"
    )
    project = db.session.get(Project, project_id)
    vendor = db.session.get(Vendor, shop_id)
    from portal.beneficiaries.models import Beneficiary

    redemption = redemptions.start(
        vendor,
        project,
        setup.state(project_id),
        db.session.get(Beneficiary, person_id),
        2_500,
        "phone",
    )
    db.session.commit()
    body = db.session.scalar(select(OutboxMessage.body).order_by(OutboxMessage.id.desc()))
    code = re.search(r"\b(\d{6})\b", body).group(1)
    assert redemptions.confirm(vendor, redemption.id, code).ok
    db.session.commit()
    redemption_id = redemption.id
    wait_until(
        lambda: db.session.get(Redemption, redemption_id).status == SETTLED, "the redemption"
    )
    IDS.update(project=project_id, vendor=shop_id, currency=project.currency)


def sign_in_as(page, portal, email: str, password: str) -> None:
    page.goto(f"{portal['base']}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Good to see you")


def _vendor_phone(chromium, portal):
    staff, outbox = staff_outbox(chromium, portal)
    phone = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.goto(f"{portal['base']}/vendor/sign-in")
    last = newest_message_id(outbox)
    page.get_by_label("Your phone number").fill(VENDOR_PHONE)
    page.get_by_role("button", name="Send me a code").click()
    code = read_code(outbox, "vendor.sign_in", VENDOR_PHONE[-7:], last)
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    return staff, phone, page


def _ask_on_phone(page, amount: str):
    """On the phone's cash-out form: ask for ``amount``; the new row, waiting for approval."""
    page.get_by_label("Amount to cash out").fill(amount)
    page.get_by_role("button", name="Ask to cash out").click()
    row = page.locator("#v-settlements li").first
    expect(row.locator("[data-settlement-label]")).to_have_text("Waiting for approval")
    return row


def _use_provider(app, fake, base: str) -> None:
    """The served portal pays by mobile money through ``fake`` and hears back at ``base``."""
    from portal.extensions import db
    from portal.payouts import momo
    from portal.settings import services as settings

    with app.app_context():
        for key, value in (
            (momo.BASE_URL, fake.url),
            (momo.CALLBACK_BASE_URL, base),
            (momo.API_USER, fake.api_user),
            (momo.API_KEY, fake.api_key),
            (momo.SUBSCRIPTION_KEY, fake.subscription_key),
        ):
            settings.set_value(key, value)
        db.session.commit()
        db.session.remove()


def test_a_cash_out_turns_paid_on_the_phone_without_a_reload(chromium, portal, shots):
    from tests.support.momo_server import FakeMomo

    app, base = portal["app"], portal["base"]
    with FakeMomo() as fake:
        fake.lose_callbacks = True  # held back until the phone shows the settlement
        _use_provider(app, fake, base)
        staff, phone, page = _vendor_phone(chromium, portal)
        page.get_by_role("link", name="Cash out").click()
        expect(page.locator("[data-available]").first).to_contain_text("NPR 25.00")
        page.get_by_role("link", name="Cash out from Koshi cash-outs").click()
        page.get_by_label("Amount to cash out").fill("30.00")
        page.get_by_role("button", name="Ask to cash out").click()
        expect(page.locator(".field-error, .error, [role=alert]").first).to_be_visible()
        page.screenshot(path=str(shots / "settlement-vendor-error-375.png"), full_page=True)
        row = _ask_on_phone(page, "20.00")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the cash-out page is {width}px wide"
        page.screenshot(path=str(shots / "settlement-vendor-asked-375.png"), full_page=True)

        # Finance approves it in another browser: 20.00 is above the threshold, so it waits.
        finance = chromium.new_context(viewport={"width": 1280, "height": 900})
        decide = finance.new_page()
        staff_sign_in(decide, portal)
        decide.goto(f"{base}/approvals")
        decide.get_by_role("button", name="Approve").first.click()
        decide.goto(f"{base}/projects/{IDS['project']}/settlements")
        decide.locator("#settlements-table a").first.click()
        expect(decide.locator("#settlement-detail")).to_contain_text("Waiting for approval")
        expect(decide.get_by_text("(1 of 2 approvals)")).to_be_visible()
        decide.screenshot(path=str(shots / "settlement-one-of-two-1280.png"), full_page=True)
        settlement_url = decide.url
        expect(row.locator("[data-settlement-label]")).to_have_text("Waiting for approval")

        # The second approver, in a third browser, releases it: the chain burns it and the
        # transfer goes; the phone follows by itself.
        second = chromium.new_context(viewport={"width": 1280, "height": 900})
        release = second.new_page()
        sign_in_as(release, portal, APPROVER["email"], APPROVER["password"])
        release.goto(f"{base}/approvals")
        release.get_by_role("button", name="Approve").first.click()
        expect(row.locator("[data-settlement-label]")).to_have_text("Payment sent", timeout=90_000)
        fake.lose_callbacks = False
        wait_until_transfer(fake)
        reference = next(iter(fake.transfers))
        fake.finish(reference)
        expect(row.locator("[data-settlement-label]")).to_have_text("Paid", timeout=60_000)
        page.screenshot(path=str(shots / "settlement-vendor-paid-375.png"), full_page=True)

        # Finance uploads the provider's report; the line matches and the page (open, not
        # reloaded) turns Reconciled.
        decide.goto(settlement_url)
        badge = decide.locator("#settlement-detail [data-settlement-label]")
        expect(badge).to_have_text("Paid")
        statement = decide.context.new_page()
        statement.goto(f"{base}/reconciliation/?project={IDS['project']}")
        statement.locator("#project_id").select_option(str(IDS["project"]))
        statement.get_by_label("Statement (CSV or XLSX)").set_input_files(
            {
                "name": "momo-report.csv",
                "mimeType": "text/csv",
                "buffer": (
                    "External ID,Amount,Currency,Status,Date\n"
                    f"{reference},20.00,{IDS['currency']},SUCCESSFUL,2026-12-04\n"
                ).encode(),
            }
        )
        statement.get_by_role("button", name="Upload and match").click()
        expect(statement.locator(".flash, [role=status]").first).to_contain_text("1 line.")
        statement.screenshot(path=str(shots / "settlement-reconciliation-1280.png"), full_page=True)
        expect(badge).to_have_text("Reconciled", timeout=30_000)
        decide.reload()
        expect(decide.locator("#settlement-detail")).to_have_attribute("data-status", "reconciled")
        decide.screenshot(path=str(shots / "settlement-reconciled-1280.png"), full_page=True)
        expect(row.locator("[data-settlement-label]")).to_have_text("Paid")

        # Staff pages, both widths.
        for width in (1280, 375):
            context = chromium.new_context(viewport={"width": width, "height": 900})
            view = context.new_page()
            staff_sign_in(view, portal)
            view.goto(f"{base}/projects/{IDS['project']}/settlements")
            expect(view.locator("#settlements-table")).to_contain_text("Reconciled")
            view.screenshot(path=str(shots / f"settlement-list-{width}.png"), full_page=True)
            view.locator("#settlements-table a").first.click()
            expect(view.locator("#settlement-detail")).to_contain_text("Reconciled")
            view.screenshot(path=str(shots / f"settlement-show-{width}.png"), full_page=True)
            view.goto(f"{base}/projects/{IDS['project']}/settlements/run")
            view.screenshot(path=str(shots / f"settlement-run-form-{width}.png"), full_page=True)
            scroll = view.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width + 1, f"the run form is {scroll}px wide at {width}"
            context.close()
        second.close()
        finance.close()
        phone.close()
        staff.close()


def wait_until_transfer(fake, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fake.transfers:
            return
        time.sleep(0.2)
    raise AssertionError("the transfer never reached the provider")


def test_a_guardian_pauses_payments_and_the_phone_says_so(chromium, portal, shots):
    """The pause screen, the caps form and the owed list, at both widths: a guardian pauses
    with a reason and a tick, staff pages show it, the vendor's charge page says so, then the
    guardian resumes; a new settle cap is signed by the treasury and shows on the page."""
    base, project_id = portal["base"], IDS["project"]
    staff = chromium.new_context(viewport={"width": 1280, "height": 900})
    guard = staff.new_page()
    staff_sign_in(guard, portal)
    guard.goto(f"{base}/projects/{project_id}/chain")
    pause = guard.locator("#pause")
    pause.get_by_role("button", name="Pause payments").click()
    expect(guard.locator("#pause .field--error").first).to_be_visible()  # no reason, no tick
    guard.locator("#pause").get_by_label("Reason").fill("Suspected fraud at a shop")
    guard.get_by_label("I understand what this stops").check()
    guard.locator("#pause").get_by_role("button", name="Pause payments").click()
    expect(guard.locator("#project-paused")).to_contain_text("Suspected fraud at a shop")
    expect(guard.locator("[data-paused-on-chain]")).to_have_text("paused", timeout=30_000)
    for width in (1280, 375):
        view = chromium.new_context(viewport={"width": width, "height": 900}).new_page()
        staff_sign_in(view, portal)
        view.goto(f"{base}/projects/{project_id}/chain")
        expect(view.locator("[data-paused-on-chain]")).to_have_text("paused", timeout=30_000)
        view.screenshot(path=str(shots / f"chain-paused-{width}.png"), full_page=True)
        scroll = view.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width + 1, f"the contracts page is {scroll}px wide at {width}"
        view.goto(f"{base}/projects/{project_id}/settlements/owed")
        expect(view.locator("#project-paused")).to_be_visible()
        expect(view.locator("#owed-total")).to_contain_text("5.00")
        view.screenshot(path=str(shots / f"settlements-owed-{width}.png"), full_page=True)
        scroll = view.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width + 1, f"the owed list is {scroll}px wide at {width}"
        view.context.close()

    staff_ctx, phone, page = _vendor_phone(chromium, portal)
    page.goto(f"{base}/vendor/charge")
    expect(page.locator(f'[data-paused-project="{project_id}"]')).to_contain_text(
        "Payments are paused in Koshi cash-outs"
    )
    page.screenshot(path=str(shots / "vendor-charge-paused-375.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the charge page is {width}px wide"

    # Resumed: the banner goes, the phone can charge again.
    guard.goto(f"{base}/projects/{project_id}/chain")
    guard.locator("#pause").get_by_label("Reason").fill("Checked: a mistake")
    guard.get_by_label("I understand what this stops").check()
    guard.get_by_role("button", name="Resume payments").click()
    expect(guard.locator("#project-paused")).to_have_count(0)
    expect(guard.locator("[data-paused-on-chain]")).to_have_text("not paused", timeout=30_000)
    page.reload()
    expect(page.locator("[data-paused-project]")).to_have_count(0)

    # A settle cap from the page, signed by the treasury; the table follows the chain.
    guard.locator("#caps summary").click()
    guard.locator("#caps").get_by_label("Action", exact=True).select_option("settle")
    guard.get_by_label("Per transaction").fill("100.00")
    guard.get_by_label("Per day").fill("500.00")
    guard.screenshot(path=str(shots / "chain-caps-form-1280.png"), full_page=True)
    guard.get_by_role("button", name="Set the limit").click()
    expect(guard.locator(".flash").first).to_contain_text("New settle limits sent")
    wait_until_text(guard, '[data-cap="settle"]', "500.00")
    guard.screenshot(path=str(shots / "chain-caps-set-1280.png"), full_page=True)
    phone.close()
    staff_ctx.close()
    staff.close()


def wait_until_text(page, selector: str, text: str, timeout: float = 30) -> None:
    """Reload until ``selector`` shows ``text`` (the page reads the chain when it renders)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in page.locator(selector).inner_text():
            return
        time.sleep(0.5)
        page.reload()
    raise AssertionError(f"{selector} never showed {text}")


def test_a_payment_failed_after_the_burn_is_paid_again_from_the_phone(chromium, portal, shots):
    """What the earlier tests left (5.00) is cashed out; the provider fails the transfer after
    the burn. Without a reload the phone says it will be paid again and offers "Pay me again";
    staff see it owed; the vendor taps it and the second try is paid, live."""
    from tests.support.momo_server import FakeMomo

    app, base = portal["app"], portal["base"]
    number = VENDOR_MOMO.lstrip("+")
    with FakeMomo() as fake:
        fake.outcome[number] = ("FAILED", "PAYEE_NOT_FOUND")
        _use_provider(app, fake, base)
        staff, phone, page = _vendor_phone(chromium, portal)
        page.get_by_role("link", name="Cash out").click()
        expect(page.locator("[data-available]").first).to_contain_text("NPR 5.00")
        page.get_by_role("link", name="Cash out from Koshi cash-outs").click()
        row = _ask_on_phone(page, "5.00")

        finance = chromium.new_context(viewport={"width": 1366, "height": 900})
        decide = finance.new_page()
        staff_sign_in(decide, portal)
        decide.goto(f"{base}/approvals")
        decide.get_by_role("button", name="Approve").first.click()
        label = row.locator("[data-settlement-label]")
        expect(label).to_have_text("Payment failed", timeout=90_000)
        expect(row.locator("[data-settlement-note]")).to_have_text("NPR 5.00 will be paid again")
        expect(row.get_by_role("button", name="Pay me again")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the cash-out page is {width}px wide"
        page.screenshot(path=str(shots / "settlement-vendor-failed-375.png"), full_page=True)
        page.reload()  # the balance card counts it too
        expect(page.locator("[data-owed-again]")).to_contain_text("NPR 5.00")
        page.screenshot(path=str(shots / "settlement-vendor-failed-card-375.png"), full_page=True)
        row = page.locator("#v-settlements li").first

        for viewport in (1366, 375):
            context = chromium.new_context(viewport={"width": viewport, "height": 900})
            view = context.new_page()
            staff_sign_in(view, portal)
            view.goto(f"{base}/projects/{IDS['project']}/settlements")
            view.locator("#settlements-table a").first.click()
            expect(view.locator("#settlement-detail")).to_contain_text(
                "owed to the vendor: pay it again"
            )
            expect(view.get_by_role("button", name="Retry the payout")).to_be_visible()
            view.screenshot(
                path=str(shots / f"settlement-owed-again-{viewport}.png"), full_page=True
            )
            scroll = view.evaluate("document.documentElement.scrollWidth")
            assert scroll <= viewport + 1, f"the settlement page is {scroll}px wide at {viewport}"
            context.close()

        # The number works again; the vendor asks to be paid again to it, from the phone.
        del fake.outcome[number]
        row.get_by_role("button", name="Pay me again").click()
        expect(page.locator(".flash").first).to_contain_text("paying you NPR 5.00 again")
        row = page.locator("#v-settlements li").first
        expect(row.locator("[data-settlement-label]")).to_have_text("Paid", timeout=90_000)
        expect(row.locator("[data-settlement-note]")).to_be_hidden()
        expect(row.get_by_role("button", name="Pay me again")).to_be_hidden()
        page.screenshot(path=str(shots / "settlement-vendor-paid-again-375.png"), full_page=True)
        assert len(fake.transfers) == 2  # the failed try and the one that paid
        finance.close()
        phone.close()
        staff.close()

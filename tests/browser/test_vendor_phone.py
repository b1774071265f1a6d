"""A vendor's phone (375 px) in a real browser: sign in with the SMS code read from the
development outbox by a staff member, charge a beneficiary by phone number, type the code the
beneficiary received, and watch the receipt go from pending to confirmed without a reload.

The portal runs as ``flask serve`` with its worker threads (the chain jobs need the embedded
EVM of that process); this process prepares the project through the services on the same
database, as staff would through the pages.
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
VENDOR_PHONE, PERSON_PHONE = "9805600001", "9845600001"
CARD: dict[str, str] = {}  # the beneficiary's card token, printed on the card only


@pytest.fixture(scope="module")
def portal(redis_db, portal_secrets, sqlite_factory, tmp_path_factory):
    from portal.extensions import db

    with stack.served_portal(
        database_url=sqlite_factory(),
        redis_url=redis_db.url,
        secrets=portal_secrets,
        folder=tmp_path_factory.mktemp("vendor-stack"),
        name="vendor",
    ) as served:
        with served["app"].app_context():
            prepare()
            db.session.remove()
        yield served


def wait_until(check, what: str, timeout: float = 90):
    from portal.extensions import db

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.rollback()  # see what the web process's workers committed since
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def prepare() -> None:
    """An active project, deployed and funded, one beneficiary allocated 40.00 and an approved
    vendor: the services and the web process's own chain jobs, as staff pages would do it."""
    from sqlalchemy import select

    from portal.accounts.models import User
    from portal.beneficiaries import services as beneficiaries
    from portal.cards import services as cards
    from portal.chain import setup
    from portal.disbursements import services as disbursements
    from portal.disbursements.models import Disbursement
    from portal.extensions import db
    from portal.projects import services as projects
    from portal.projects.models import Project
    from portal.vendors import services as vendors

    admin = db.session.scalar(select(User).limit(1))
    project = projects.create({"name": "Koshi food vouchers", "type": "cva"}, admin)
    projects.change_status(project, "active")
    person = beneficiaries.create(
        {"name": "Vendor Test Person", "phone": PERSON_PHONE}, project=project
    )
    shop = vendors.register(
        {
            "name": "Hill Grocers",
            "phone": VENDOR_PHONE,
            "category": "shop",
            "contact_name": "Owner",
        },
        project=project,
    )
    vendors.change_status(shop, "approved")
    _, CARD["token"] = cards.issue(person)
    setup.start_deploy(project, "AID", 2, None)
    db.session.commit()
    project_id, person_id = project.id, person.id
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


def staff_sign_in(page, portal) -> None:
    staff_browser.sign_in_to(page, portal)  # with the code step: the admin is enrolled


def newest_message_id(outbox) -> int:
    outbox.reload()
    first = outbox.locator("tr[data-message-id]").first
    return int(first.get_attribute("data-message-id")) if first.count() else 0


def read_code(outbox, purpose: str, phone_tail: str, after: int, timeout: float = 30) -> str:
    """The code of the newest message for ``purpose`` sent after message ``after``, read from
    the outbox page as a staff member would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outbox.reload()
        rows = outbox.locator(f'tr[data-purpose="{purpose}"]')
        if rows.count():
            row = rows.first
            if int(row.get_attribute("data-message-id")) > after:
                assert row.locator("[data-to]").inner_text().endswith(phone_tail)
                return CODE.search(row.locator("[data-body]").inner_text()).group(1)
        time.sleep(0.3)
    raise AssertionError(f"no {purpose} message reached the outbox")


def fits(page, name: str, shots) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} is {width}px wide on a 375px phone"
    page.screenshot(path=str(shots / f"vendor-{name}.png"), full_page=True)


def vendor_sign_in(page, outbox, base, wrong_first=False, shots=None) -> None:
    page.goto(f"{base}/vendor/sign-in")
    last = newest_message_id(outbox)
    page.get_by_label("Your phone number").fill(VENDOR_PHONE)
    page.get_by_role("button", name="Send me a code").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Enter your code")
    code = read_code(outbox, "vendor.sign_in", VENDOR_PHONE[-7:], last)
    if wrong_first:
        page.get_by_label("Code").fill(f"{(int(code) + 1) % 10**6:06d}")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator(".field--error .error")).to_contain_text("not right")
        fits(page, "2-sign-in-code", shots)
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hill Grocers")


def staff_outbox(chromium, portal):
    staff = chromium.new_context(viewport={"width": 1280, "height": 900})
    outbox = staff.new_page()
    staff_sign_in(outbox, portal)
    outbox.goto(f"{portal['base']}/dev/outbox")
    expect(outbox.get_by_role("heading", level=1)).to_have_text("Development outbox")
    return staff, outbox


def test_vendor_charges_a_beneficiary_on_the_phone(chromium, portal, shots):
    base = portal["base"]
    staff, outbox = staff_outbox(chromium, portal)

    phone = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = phone.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Sign in: the phone number, then the code that the outbox shows was sent to it.
    page.goto(f"{base}/vendor/")
    expect(page).to_have_url(re.compile(r"/vendor/sign-in"))
    fits(page, "1-sign-in", shots)
    page.get_by_label("Your phone number").fill("12")
    page.get_by_role("button", name="Send me a code").click()
    expect(page.locator(".field--error .error")).to_contain_text("Not a valid phone number")
    vendor_sign_in(page, outbox, base, wrong_first=True, shots=shots)
    expect(page.locator(".v-balance__n")).to_have_text("0.00 AID")
    fits(page, "3-home", shots)

    # Charge by phone number: too much first. A typed number tells the vendor nothing (not
    # whose it is, not what is left): the code page as always; the beneficiary's SMS says
    # what is left, and no code can confirm it. The vendor cancels and charges 12.50.
    page.get_by_role("link", name="Charge a beneficiary").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Charge a beneficiary")
    fits(page, "4-charge", shots)
    page.get_by_label("Or the beneficiary's phone number").fill(PERSON_PHONE)
    page.get_by_label("Amount").fill("99")
    page.get_by_role("button", name="Send the code to the beneficiary").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ask for the code")
    expect(page.locator(".v-card")).to_contain_text("A code was sent if this number can pay")
    expect(page.locator(".v-sum__amount")).to_have_text("99.00 AID")
    expect(page.locator("body")).not_to_contain_text("40.00")
    fits(page, "5-charge-too-much", shots)
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".v-status")).to_have_text("Cancelled")
    last = newest_message_id(outbox)
    page.get_by_role("link", name="New charge").click()
    page.get_by_label("Or the beneficiary's phone number").fill(PERSON_PHONE)
    page.get_by_label("Amount").fill("12.50")
    page.get_by_role("button", name="Send the code to the beneficiary").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ask for the code")
    expect(page.locator(".v-sum__amount")).to_have_text("12.50 AID")
    fits(page, "6-code", shots)

    # The beneficiary reads the code out; the vendor types it.
    code = read_code(outbox, "redemption.code", PERSON_PHONE[-7:], last)
    outbox.screenshot(path=str(shots / "vendor-0-outbox-staff.png"), full_page=True)
    page.get_by_label("Code").fill(code)
    page.get_by_role("button", name="Confirm payment").click()
    expect(page.locator(".v-receipt__amount")).to_have_text("12.50 AID")
    # Once the code is accepted, what is left is shown.
    expect(page.locator(".v-facts")).to_contain_text("Left after this payment")
    expect(page.locator(".v-facts")).to_contain_text("27.50 AID")
    status = page.locator(".v-status")
    first_seen = status.get_attribute("data-status")
    page.evaluate("window.__notReloaded = true")
    if first_seen != "settled":
        page.screenshot(path=str(shots / "vendor-7-receipt-pending.png"), full_page=True)
    expect(status).to_have_text("Confirmed", timeout=30_000)
    assert page.evaluate("window.__notReloaded === true"), "the receipt was reloaded"
    expect(page.locator("[data-waiting]")).to_be_hidden()
    fits(page, "8-receipt-confirmed", shots)

    page.get_by_role("link", name="Home").click()
    expect(page.locator(".v-balance__n")).to_have_text("12.50 AID")
    # The home page reads the database's ledger; the chain only when the vendor asks.
    expect(page.locator("[data-on-chain]")).to_have_count(0)
    page.get_by_role("link", name="Check the balance on the chain").click()
    expect(page.locator("[data-on-chain]")).to_have_text("On chain: 12.50 AID")
    expect(page.locator(".v-pay").first).to_contain_text("Confirmed")
    fits(page, "9-home-after", shots)
    assert not errors, errors
    print(f"\nreceipt first rendered as {first_seen}")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/vendor/sign-in"))
    page.goto(f"{base}/vendor/charge")
    expect(page).to_have_url(re.compile(r"/vendor/sign-in"))
    phone.close()
    staff.close()


def card_video(token: str, path) -> None:
    """A camera feed (YUV4MPEG2, grey) showing the card's QR code, for Chromium's fake camera."""
    import qrcode
    from PIL import Image

    width, height = 640, 480
    code = qrcode.QRCode(border=4, box_size=8)
    code.add_data(token)
    picture = code.make_image(fill_color="black", back_color="white").get_image().convert("L")
    frame = Image.new("L", (width, height), 235)
    frame.paste(picture, ((width - picture.width) // 2, (height - picture.height) // 2))
    chroma = bytes([128]) * (width * height // 2)
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(10):
            out.write(b"FRAME\n" + frame.tobytes() + chroma)


def test_the_camera_reads_the_beneficiarys_card(chromium, portal, shots, tmp_path):
    """The scan button with a (fake) camera that sees the printed card: the QR is decoded in
    the page (jsQR, fetched on demand) and the charge goes to that beneficiary."""
    from tests.browser.conftest import ARGS, CHROMIUM

    base = portal["base"]
    video = tmp_path / "card.y4m"
    card_video(CARD["token"], video)
    staff, outbox = staff_outbox(chromium, portal)
    camera = chromium.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[
            *ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        phone = camera.new_context(
            viewport=PHONE, is_mobile=True, has_touch=True, permissions=["camera"]
        )
        page = phone.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        vendor_sign_in(page, outbox, base)
        page.get_by_role("link", name="Charge a beneficiary").click()
        decoder = []
        page.on("request", lambda r: decoder.append(r.url) if "jsQR" in r.url else None)
        page.get_by_role("button", name="Scan the card").click()
        done = page.locator("[data-scan-done]")
        expect(done).to_contain_text(f"Card read (…{CARD['token'][-4:]})", timeout=20_000)
        expect(page.get_by_label("Card code")).to_have_value(CARD["token"])
        expect(page.locator("[data-scan-view]")).to_be_hidden()  # the camera is off again
        assert decoder, "jsQR was not fetched (or the browser decoded by itself)"
        fits(page, "10-card-scanned", shots)
        page.get_by_label("Amount").fill("2")
        page.get_by_role("button", name="Send the code to the beneficiary").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Ask for the code")
        expect(page.locator(".v-sum__amount")).to_have_text("2.00 AID")
        # A scanned card may show its holder's name, masked.
        expect(page.locator(".v-sum")).to_contain_text("from V•••• T••• P••••")
        assert not errors, errors
        phone.close()
    finally:
        camera.close()
        staff.close()

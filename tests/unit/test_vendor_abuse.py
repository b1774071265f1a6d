"""Vendor code abuse: limits keyed on the payer and the vendor across every session, decoy
charges for typed numbers, the session cap, revocation on suspension, and GETs that write
nothing."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from portal.audit.models import AuditEntry
from portal.cards import services as cards
from portal.comms.models import OutboxMessage
from portal.extensions import db
from portal.quotas.models import QuotaHit
from portal.redemptions import payer_names
from portal.redemptions.models import Redemption
from portal.vendor_portal.models import VendorSession
from portal.vendors import services as vendors
from tests.unit import test_vendor_portal as base

world = base.world  # the fixture: a project with a chain, one entitled person, one vendor
last_code = base.last_code

CODE = re.compile(r"\b(\d{6})\b")
PERSON_PHONE = "9841000001"
NOBODY_PHONE = "9841999999"
EXAMPLES = 12


def signed_in(app, vendor, address: str = "127.0.0.1"):
    """A new browser of ``vendor``, signed in: its own cookie jar, its own vendor session."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    assert client.post("/vendor/sign-in", data={"phone": vendor.phone}).status_code == 302
    response = client.post("/vendor/sign-in/code", data={"code": last_code(vendor.phone)})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def sms_to(phone: str) -> int:
    # The number is stored encrypted: compare after reading.
    return sum(1 for to in db.session.scalars(select(OutboxMessage.recipient)) if to == phone)


def charge(client, project, phone=PERSON_PHONE, amount="1"):
    return client.post(
        "/vendor/charge", data={"project_id": project.id, "phone": phone, "amount": amount}
    )


def later(seconds: int) -> None:
    """Let time pass for the limit counts."""
    db.session.execute(update(QuotaHit).values(at=QuotaHit.at - timedelta(seconds=seconds)))
    db.session.commit()


@pytest.fixture
def roomy(app):
    """Sign-ins and sessions are not what these tests count."""
    app.config.update(
        VENDOR_SIGNIN_SMS_LIMITS="100 per minute",
        VENDOR_MAX_SESSIONS=50,
        VENDOR_CODE_IP_LIMIT="1000 per minute",
        VENDOR_CODE_ENTRY_LIMIT="1000 per minute",
        VENDOR_CHARGE_LIMITS="1000 per minute",
    )
    return app


# --- per payer, across sessions and vendors ---------------------------------------------------


@pytest.mark.parametrize("browsers", [1, 2, 5])
def test_codes_per_payer_hold_across_sessions_and_vendors(world, roomy, make_vendor, browsers):
    project, person, vendor = world
    roomy.config["BENEFICIARY_CODE_LIMITS"] = "3 per 10 minutes"
    other = make_vendor(project=project, status="approved")
    db.session.commit()
    clients = [signed_in(roomy, vendor) for _ in range(browsers)] + [signed_in(roomy, other)]
    outcomes = [charge(clients[n % len(clients)], project).status_code for n in range(8)]
    assert outcomes.count(302) == 3 and outcomes.count(429) == 5
    assert sms_to(person.pii.phone) == 3
    refused = charge(clients[0], project)
    html = refused.get_data(as_text=True)
    assert refused.status_code == 429 and "A new code can be sent in" in html
    assert int(refused.headers["Retry-After"]) > 0
    later(601)
    assert charge(clients[-1], project).status_code == 302
    assert sms_to(person.pii.phone) == 4


@pytest.mark.parametrize("browsers", [1, 3])
def test_wrong_guesses_per_payer_hold_across_sessions(world, roomy, browsers):
    project, person, vendor = world
    roomy.config.update(
        BENEFICIARY_CODE_LIMITS="100 per minute", BENEFICIARY_GUESS_LIMITS="7 per hour"
    )
    clients = [signed_in(roomy, vendor) for _ in range(browsers)]
    wrong = 0
    for n in range(12):
        client = clients[n % browsers]
        started = charge(client, project)
        if started.status_code != 302:
            break
        path = started.headers["Location"]
        code = last_code(person.pii.phone)
        typed = f"{(int(code) + 1) % 10**6:06d}"
        answer = client.post(path, data={"code": typed})
        if answer.status_code == 429:
            assert "Too many wrong codes were typed" in answer.get_data(as_text=True)
            # Past the limit even the right code is not tried.
            assert client.post(path, data={"code": code}).status_code == 429
            break
        wrong += 1
    assert wrong == 7
    assert (
        db.session.scalar(
            select(func.count()).select_from(Redemption).where(Redemption.status == "accepted")
        )
        == 0
    )
    later(3601)
    assert (
        clients[0]
        .post(path, data={"code": code})
        .headers["Location"]
        .endswith(path.removesuffix("/code"))
    )


def test_a_decoy_counts_wrong_guesses_like_a_payer(world, roomy):
    project, _, vendor = world
    roomy.config["BENEFICIARY_GUESS_LIMITS"] = "3 per hour"
    client = signed_in(roomy, vendor)
    path = charge(client, project, phone=NOBODY_PHONE).headers["Location"]
    for _ in range(3):
        assert "not right" in client.post(path, data={"code": "123456"}).get_data(as_text=True)
    assert client.post(path, data={"code": "123456"}).status_code == 429


def test_charges_per_vendor_hold_across_sessions(world, roomy, make_beneficiary):
    project, _, vendor = world
    roomy.config["VENDOR_CHARGE_LIMITS"] = "2 per minute"
    first, second = signed_in(roomy, vendor), signed_in(roomy, vendor)
    assert charge(first, project, phone="9841000011").status_code == 302
    assert charge(second, project, phone="9841000012").status_code == 302
    refused = charge(signed_in(roomy, vendor), project, phone="9841000013")
    assert refused.status_code == 429
    assert "You can start another in" in refused.get_data(as_text=True)


def test_sign_in_codes_per_vendor_phone_hold_across_addresses(world, app):
    _, _, vendor = world
    app.config["VENDOR_SIGNIN_SMS_LIMITS"] = "2 per 10 minutes"
    for phone in (vendor.phone, "9801777777"):  # a vendor's number and nobody's: alike
        answers = []
        for n in range(3):
            client = app.test_client()
            client.environ_base["REMOTE_ADDR"] = f"10.0.{n}.1"
            answers.append(client.post("/vendor/sign-in", data={"phone": phone}).status_code)
        assert answers == [302, 302, 429]
    assert sms_to(vendor.phone) == 2


# --- typos do not share a bucket --------------------------------------------------------------


def test_typos_of_one_do_not_silence_another(world, app, make_vendor):
    project, _, vendor = world
    other = make_vendor(project=project, status="approved")
    db.session.commit()
    app.config["VENDOR_CODE_IP_LIMIT"] = "6 per minute"
    clumsy, careful = app.test_client(), app.test_client()
    clumsy.environ_base["REMOTE_ADDR"], careful.environ_base["REMOTE_ADDR"] = "10.1.1.1", "10.2.2.2"
    for _ in range(6):
        assert clumsy.post("/vendor/sign-in", data={"phone": "12"}).status_code == 200
    refused = clumsy.post("/vendor/sign-in", data={"phone": "12"})
    assert refused.status_code == 429
    assert re.search(r"Try again in \d+ (second|minute)", refused.get_data(as_text=True))
    typo = careful.post("/vendor/sign-in", data={"phone": "13"})
    assert typo.status_code == 200 and "Not a valid phone number" in typo.get_data(as_text=True)
    app.config["VENDOR_CODE_IP_LIMIT"] = "100 per minute"
    app.config["VENDOR_SIGNIN_SMS_LIMITS"] = "100 per minute"
    first, second = signed_in(app, vendor, "10.3.3.3"), signed_in(app, other, "10.3.3.3")
    for _ in range(15):
        assert charge(first, project, phone="12").status_code == 200
    typo = charge(second, project, phone="12")
    assert typo.status_code == 200 and "Not a valid phone number" in typo.get_data(as_text=True)
    assert charge(second, project).status_code == 302


# --- a typed number reveals nothing -----------------------------------------------------------


def _same_page(html: str) -> str:
    html = re.sub(r'name="csrf_token" [^>]*value="[^"]*"', "csrf", html)
    html = re.sub(r'value="[^"]*" name="csrf_token"', "csrf", html)
    html = re.sub(r"/vendor/payments/\d+", "/vendor/payments/N", html)
    html = re.sub(r'data-redemption-id="\d+"', "data-redemption-id", html)
    html = re.sub(r"#\d+|Payment \d+", "#N", html)
    html = re.sub(r"works for \d+ min \d+ s", "works for T", html)
    return re.sub(r"\d\d:\d\d", "HH:MM", html)


@settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(amount=st.sampled_from(["1", "12.50", "50", "50.01", "60", "999"]), resend=st.booleans())
def test_a_typed_number_of_nobody_looks_like_a_beneficiarys(world, roomy, amount, resend):
    project, person, vendor = world
    roomy.config.update(BENEFICIARY_CODE_LIMITS="100 per minute", OTP_RESEND_SECONDS=0)
    client = signed_in(roomy, vendor)
    pages = {}
    before = sms_to(NOBODY_PHONE)
    for phone in (PERSON_PHONE, NOBODY_PHONE):
        started = charge(client, project, phone=phone, amount=amount)
        assert started.status_code == 302
        path = started.headers["Location"]
        seen = [client.get(path).get_data(as_text=True)]
        if resend:
            seen.append(
                client.post(path.replace("/code", "/resend"), follow_redirects=True).get_data(
                    as_text=True
                )
            )
        sent = set(
            CODE.findall(" ".join(b for b in db.session.scalars(select(OutboxMessage.body)) if b))
        )
        wrong = next(code for code in ("000000", "000001") if code not in sent)
        seen.append(client.post(path, data={"code": wrong}).get_data(as_text=True))
        seen.append(client.get(path.removesuffix("/code")).get_data(as_text=True))
        pages[phone] = [_same_page(html) for html in seen]
        for html in seen:
            assert person.ref not in html and "left" not in html.lower()
            if amount != "50":  # what is left (50.00) shows nowhere but as the amount typed
                assert "50.00" not in html
    assert pages[PERSON_PHONE] == pages[NOBODY_PHONE]
    history = client.get("/vendor/payments").get_data(as_text=True)
    rows = [_same_page(row) for row in re.findall(r'<li class="v-pay".*?</li>', history, re.S)]
    assert rows[0] == rows[1]
    assert sms_to(NOBODY_PHONE) == before == 0
    db.session.execute(update(Redemption).values(status="cancelled"))
    db.session.commit()


def test_a_scanned_card_shows_a_masked_name_and_the_receipt_what_is_left(world, client, app):
    project, person, vendor = world
    _, token = cards.issue(person)
    db.session.commit()
    client = signed_in(app, vendor)
    started = client.post(
        "/vendor/charge", data={"project_id": project.id, "card": token, "amount": "20"}
    )
    page = client.get(started.headers["Location"]).get_data(as_text=True)
    name = person.pii.name
    assert f"from {payer_names.mask(name)}" in page and name not in page
    assert person.ref not in page
    done = client.post(started.headers["Location"], data={"code": last_code(person.pii.phone)})
    receipt = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Left after this payment" in receipt and "NPR\u00a030.00" in receipt


# --- sessions ---------------------------------------------------------------------------------


def test_suspension_ends_every_session_for_good(world, app):
    _, _, vendor = world
    app.config["VENDOR_SIGNIN_SMS_LIMITS"] = "100 per minute"
    phones = [signed_in(app, vendor) for _ in range(3)]
    vendors.change_status(vendor, "suspended")
    db.session.commit()
    live = select(func.count()).select_from(VendorSession).where(VendorSession.revoked_at.is_(None))
    assert db.session.scalar(live) == 0
    vendors.change_status(vendor, "approved")
    db.session.commit()
    for phone in phones:
        assert phone.get("/vendor/").headers["Location"].startswith("/vendor/sign-in")
    assert signed_in(app, vendor).get("/vendor/").status_code == 200


@pytest.mark.parametrize("cap", [1, 3])
def test_a_new_sign_in_ends_the_oldest_beyond_the_cap(world, app, cap):
    _, _, vendor = world
    app.config.update(VENDOR_SIGNIN_SMS_LIMITS="100 per minute", VENDOR_MAX_SESSIONS=cap)
    phones = [signed_in(app, vendor) for _ in range(cap + 2)]
    open_pages = [phone.get("/vendor/").status_code for phone in phones]
    assert open_pages == [302, 302] + [200] * cap
    live = select(func.count()).select_from(VendorSession).where(VendorSession.revoked_at.is_(None))
    assert db.session.scalar(live) == cap


# --- GETs write nothing -----------------------------------------------------------------------

# Only appends to the audit log and a session's last-seen time may happen on a GET.
ALLOWED = {"audit_entries", "audit_head"}


def snapshot() -> dict:
    db.session.expire_all()
    found = {}
    for table in db.metadata.sorted_tables:
        if table.name in ALLOWED:
            continue
        columns = [
            c for c in table.columns if (table.name, c.name) != ("vendor_sessions", "last_seen_at")
        ]
        found[table.name] = sorted(
            (tuple(str(v) for v in row) for row in db.session.execute(select(*columns))), key=str
        )
    return found


def test_vendor_gets_write_no_domain_state(world, app):
    project, person, vendor = world
    app.config["BENEFICIARY_CODE_LIMITS"] = "100 per minute"
    client = signed_in(app, vendor)
    ids = []
    for phone, amount in ((PERSON_PHONE, "1"), (NOBODY_PHONE, "2"), ("9841000011", "3")):
        location = charge(client, project, phone=phone, amount=amount).headers["Location"]
        ids.append(int(location.split("/")[3]))
    done = client.post(
        f"/vendor/payments/{ids[0]}/code", data={"code": last_code(person.pii.phone)}
    )
    assert done.status_code == 302
    # One code ran out unused; the session was last seen a while ago.
    db.session.execute(
        update(Redemption)
        .where(Redemption.id == ids[1])
        .values(code_expires_at=Redemption.created_at)
    )
    for row in db.session.scalars(select(VendorSession)):
        row.last_seen_at = row.created_at - timedelta(hours=1)
    db.session.commit()
    audit_before = db.session.execute(
        select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id)
    ).all()
    before = snapshot()
    paths = ["/vendor/", "/vendor/payments", "/vendor/charge", "/vendor/sign-in/code"]
    for redemption_id in ids:
        paths += [f"/vendor/payments/{redemption_id}", f"/vendor/payments/{redemption_id}/code"]
    for path in paths:
        assert client.get(path).status_code in (200, 302), path
    assert "Code expired" in client.get(f"/vendor/payments/{ids[1]}").get_data(as_text=True)
    after = snapshot()
    assert after == before
    # The audit log may only have grown.
    entries = db.session.execute(
        select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id)
    ).all()
    assert entries[: len(audit_before)] == audit_before


def test_the_sweeper_expires_codes_and_forgets_old_limit_keys(world, roomy):
    from portal.redemptions import codes
    from portal.redemptions import services as redemptions
    from portal.vendor_portal.sweep import sweep

    project, _, vendor = world
    client = signed_in(roomy, vendor)
    decoy_id = int(charge(client, project, phone=NOBODY_PHONE).headers["Location"].split("/")[3])
    assert db.session.scalar(select(func.count()).select_from(QuotaHit)) > 0
    two_days_ago = db.session.get(Redemption, decoy_id).created_at - timedelta(days=2)
    db.session.execute(
        update(Redemption).values(created_at=two_days_ago, code_expires_at=two_days_ago)
    )
    db.session.execute(update(QuotaHit).values(at=two_days_ago))
    db.session.commit()
    assert sweep()[0] == 1
    decoy = db.session.get(Redemption, decoy_id)
    assert (decoy.status, decoy.subject) == ("expired", None)
    assert db.session.scalar(select(func.count()).select_from(QuotaHit)) == 0
    # An old row without its key still answers.
    assert redemptions.confirm(vendor, decoy_id, "123456").outcome == codes.EXPIRED

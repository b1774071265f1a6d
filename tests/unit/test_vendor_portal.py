"""The vendor's phone pages: sign-in by SMS code and the vendor session, charging a
beneficiary through to the receipt, errors as field messages, CSRF, rate limits, sockets."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.comms.models import OutboxMessage
from portal.disbursements.models import Entitlement
from portal.extensions import db, socketio
from portal.redemptions import live as redemption_live
from portal.redemptions import payer_names
from portal.redemptions.models import Redemption
from portal.vendor_portal.models import VendorSession, VendorSignIn
from portal.vendors import services as vendors
from tests.support import chain

CODE = re.compile(r"\b(\d{6})\b")


@pytest.fixture
def world(app, make_project, make_beneficiary, make_vendor):
    project = make_project(name="Winter food", status="active")
    person = make_beneficiary(project=project, phone="9841000001")
    vendor = make_vendor(project=project, status="approved", name="Corner Shop")
    chain.pretend_deployed(project)
    chain.entitle(project, person, 5_000)
    db.session.commit()
    return project, person, vendor


def messages() -> int:
    return db.session.scalar(select(func.count()).select_from(OutboxMessage))


def last_code(to: str | None = None) -> str:
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    for message in db.session.scalars(query):
        if to is None or message.recipient == to:
            return CODE.search(message.body).group(1)
    raise AssertionError("no message")


def sign_in(client, vendor):
    assert client.post("/vendor/sign-in", data={"phone": vendor.phone}).status_code == 302
    response = client.post("/vendor/sign-in/code", data={"code": last_code(vendor.phone)})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert response.headers["Location"] == "/vendor/"
    return response


# --- sign-in ---------------------------------------------------------------------------------


def test_a_vendor_signs_in_with_a_code(world, client):
    _, _, vendor = world
    page = client.get("/vendor/sign-in")
    assert page.status_code == 200 and "Send me a code" in page.get_data(as_text=True)
    response = client.post("/vendor/sign-in", data={"phone": "980 " + vendor.phone[-7:]})
    assert response.headers["Location"] == "/vendor/sign-in/code"
    message = db.session.scalar(select(OutboxMessage))
    assert (message.recipient, message.purpose) == (vendor.phone, "vendor.sign_in")
    assert "Corner Shop" in message.body
    sign_in_row = db.session.scalar(select(VendorSignIn))
    assert CODE.search(message.body).group(1) not in (sign_in_row.code_hash or "")
    response = client.post("/vendor/sign-in/code", data={"code": last_code()})
    assert response.headers["Location"] == "/vendor/"
    home = client.get("/vendor/")
    assert home.status_code == 200
    html = home.get_data(as_text=True)
    assert "Corner Shop" in html and "Charge a beneficiary" in html
    assert db.session.scalar(select(VendorSession)).vendor_id == vendor.id


def test_unknown_and_unapproved_numbers_get_the_same_answer_and_no_sms(world, client, make_vendor):
    pending = make_vendor(status=None, phone="9801999999")
    db.session.commit()
    for phone in ("9801888888", pending.phone):
        response = client.post("/vendor/sign-in", data={"phone": phone})
        assert response.headers["Location"] == "/vendor/sign-in/code"
        page = client.get("/vendor/sign-in/code").get_data(as_text=True)
        assert "If the number belongs to an approved vendor" in page
        wrong = client.post("/vendor/sign-in/code", data={"code": "123456"})
        assert "not right" in wrong.get_data(as_text=True)
    assert messages() == 0


def test_a_bad_number_is_a_field_error(world, client):
    response = client.post("/vendor/sign-in", data={"phone": "12"})
    assert response.status_code == 200
    assert "Not a valid phone number" in response.get_data(as_text=True)


def test_wrong_codes_lock_the_sign_in(world, client):
    _, _, vendor = world
    client.post("/vendor/sign-in", data={"phone": vendor.phone})
    code = last_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for left in (4, 3, 2, 1):
        page = client.post("/vendor/sign-in/code", data={"code": wrong}).get_data(as_text=True)
        assert f"{left} more tr" in page
    locked = client.post("/vendor/sign-in/code", data={"code": wrong})
    assert locked.headers["Location"] == "/vendor/sign-in"
    # The right code no longer helps: the attempt is gone from this browser and locked.
    assert client.post("/vendor/sign-in/code", data={"code": code}).status_code == 302
    assert client.get("/vendor/").status_code == 302
    assert db.session.scalar(select(VendorSignIn)).status == "locked"


def test_sign_out_and_revoke_end_the_session(world, client, app):
    _, _, vendor = world
    sign_in(client, vendor)
    assert client.post("/vendor/sign-out").headers["Location"] == "/vendor/sign-in"
    assert client.get("/vendor/").status_code == 302
    assert db.session.scalar(select(VendorSession)).revoked_at is not None

    sign_in(client, vendor)
    from portal.vendor_portal import sessions

    assert sessions.revoke_all(vendor.id) == 1
    db.session.commit()
    assert client.get("/vendor/").headers["Location"].startswith("/vendor/sign-in")


def test_an_expired_session_is_refused(world, client):
    _, _, vendor = world
    sign_in(client, vendor)
    row = db.session.scalar(select(VendorSession))
    row.expires_at = row.created_at
    db.session.commit()
    assert client.get("/vendor/").status_code == 302


def test_suspension_signs_the_vendor_out(world, client):
    _, _, vendor = world
    sign_in(client, vendor)
    vendors.change_status(vendor, "suspended")
    db.session.commit()
    assert client.get("/vendor/charge").status_code == 302


def test_codes_per_number_are_rate_limited(world, client, app):
    _, _, vendor = world
    app.config["VENDOR_SIGNIN_SMS_LIMITS"] = "2 per minute"
    for _ in range(2):
        assert client.post("/vendor/sign-in", data={"phone": vendor.phone}).status_code == 302
    refused = client.post("/vendor/sign-in", data={"phone": vendor.phone})
    assert refused.status_code == 429
    # At least the quota's wait (Flask-Limiter may raise it to its own window's reset).
    assert int(refused.headers["Retry-After"]) >= 59
    assert "You can ask for another in 1 minute" in refused.get_data(as_text=True)
    assert messages() == 2
    # Another number from the same address is still served.
    assert client.post("/vendor/sign-in", data={"phone": "9801777777"}).status_code == 302


def test_every_vendor_form_needs_its_csrf_token(world, client, app):
    _, _, vendor = world
    sign_in(client, vendor)
    app.config["WTF_CSRF_ENABLED"] = True
    for path in ("/vendor/sign-in", "/vendor/charge", "/vendor/sign-out"):
        response = client.post(path, data={"phone": vendor.phone, "amount": "1"})
        assert response.status_code == 400, path
        assert "Please try again" in response.get_data(as_text=True)
    page = client.get("/vendor/charge").get_data(as_text=True)
    assert 'name="csrf_token"' in page


# --- charging --------------------------------------------------------------------------------


def test_charge_by_phone_to_receipt(world, client):
    project, person, vendor = world
    sign_in(client, vendor)
    page = client.get("/vendor/charge").get_data(as_text=True)
    assert "Winter food" in page and "In NPR" in page and "AID" not in page
    response = client.post(
        "/vendor/charge",
        data={"project_id": project.id, "phone": "984-1000001", "amount": "12.50"},
    )
    redemption = db.session.scalar(select(Redemption))
    assert response.headers["Location"] == f"/vendor/payments/{redemption.id}/code"
    assert redemption.amount == 1_250
    code_page = client.get(response.headers["Location"]).get_data(as_text=True)
    # A typed number tells nothing of whose it is before the code is accepted.
    assert "NPR\u00a012.50" in code_page and person.ref not in code_page
    assert payer_names.mask(person.pii.name) not in code_page
    wrong = f"{(int(last_code(person.pii.phone)) + 1) % 10**6:06d}"
    retry = client.post(f"/vendor/payments/{redemption.id}/code", data={"code": wrong})
    assert "not right" in retry.get_data(as_text=True)
    done = client.post(
        f"/vendor/payments/{redemption.id}/code", data={"code": last_code(person.pii.phone)}
    )
    assert done.headers["Location"] == f"/vendor/payments/{redemption.id}"
    receipt = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Pending" in receipt and "NPR\u00a012.50" in receipt
    # Once the code is accepted the vendor sees who paid, masked; never the name or phone.
    assert f"data-payer>{payer_names.mask(person.pii.name)}<" in receipt
    assert person.pii.name not in receipt and person.pii.phone not in receipt
    assert "Left after this payment" in receipt and "NPR\u00a037.50" in receipt
    assert db.session.scalar(select(Entitlement)).redeemed == 1_250
    home = client.get("/vendor/").get_data(as_text=True)
    assert "NPR\u00a012.50 on the way" in home


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"phone": "9841000001", "amount": "abc"}, "Type only digits"),
        ({"phone": "9841000001", "amount": "1.234"}, "At most 2 digits"),
        ({"phone": "9841000001", "amount": "-3"}, "without a sign"),
        ({"phone": "9841000001", "amount": "0"}, "more than zero"),
        ({"phone": "12", "amount": "1"}, "Not a valid phone number"),
        ({"phone": "", "amount": "1"}, "Scan the card"),
        ({"card": "AC1-NOTACARD", "amount": "1"}, "No working card"),
        ({"phone": "9841000001", "amount": ""}, "Enter an amount"),
        ({"phone": "9841000001", "amount": "1", "project_id": "999"}, "Choose one of your"),
        ({"phone": "9841000001", "amount": "1", "project_id": "x"}, "Invalid Choice"),
    ],
)
def test_bad_charges_come_back_with_field_errors(world, client, data, field_error):
    project, _, vendor = world
    sign_in(client, vendor)
    form = {"project_id": project.id, **data}
    response = client.post("/vendor/charge", data=form)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert field_error in html
    assert "AC1-NOTACARD" not in html  # a card code is never echoed back
    assert db.session.scalar(select(func.count()).select_from(Redemption)) == 0


def test_resend_and_cancel_from_the_code_page(world, client):
    project, _, vendor = world
    sign_in(client, vendor)
    client.post(
        "/vendor/charge", data={"project_id": project.id, "phone": "9841000001", "amount": "1"}
    )
    redemption = db.session.scalar(select(Redemption))
    too_soon = client.post(f"/vendor/payments/{redemption.id}/resend", follow_redirects=True)
    assert "Wait" in too_soon.get_data(as_text=True)
    cancelled = client.post(f"/vendor/payments/{redemption.id}/cancel", follow_redirects=True)
    html = cancelled.get_data(as_text=True)
    assert "Cancelled" in html and "Nothing was taken" in html
    assert client.get(f"/vendor/payments/{redemption.id}/code").status_code == 302


def test_a_vendor_sees_only_their_own_payments(world, client, make_vendor):
    project, _, vendor = world
    other = make_vendor(project=project, status="approved")
    db.session.commit()
    sign_in(client, vendor)
    client.post(
        "/vendor/charge", data={"project_id": project.id, "phone": "9841000001", "amount": "1"}
    )
    redemption = db.session.scalar(select(Redemption))
    client.post("/vendor/sign-out")
    sign_in(client, other)
    for path in (f"/vendor/payments/{redemption.id}", f"/vendor/payments/{redemption.id}/code"):
        response = client.get(path)
        assert response.status_code == 404
        assert "No such payment" in response.get_data(as_text=True)
    assert client.post(f"/vendor/payments/{redemption.id}/cancel").status_code == 404
    assert db.session.get(Redemption, redemption.id).status == "awaiting_code"


def test_a_vendor_without_a_usable_project_is_told_so(world, client, make_vendor):
    lonely = make_vendor(status="approved")
    db.session.commit()
    sign_in(client, lonely)
    assert "None of your projects can take payments" in client.get("/vendor/").get_data(
        as_text=True
    )
    assert client.post("/vendor/charge", data={"amount": "1"}).status_code == 200


def test_history_pages(world, client):
    project, _, vendor = world
    sign_in(client, vendor)
    for amount in ("1", "2"):
        client.post(
            "/vendor/charge",
            data={"project_id": project.id, "phone": "9841000001", "amount": amount},
        )
    html = client.get("/vendor/payments").get_data(as_text=True)
    assert html.count('class="v-pay"') == 2
    assert "Cancelled" in html  # the first was replaced by the second


# --- sockets ---------------------------------------------------------------------------------


def test_vendor_socket_joins_only_its_own_room(world, client, app, make_vendor):
    project, _, vendor = world
    anonymous = socketio.test_client(app, flask_test_client=app.test_client())
    assert not anonymous.is_connected()
    sign_in(client, vendor)
    client.post(
        "/vendor/charge", data={"project_id": project.id, "phone": "9841000001", "amount": "1"}
    )
    redemption = db.session.scalar(select(Redemption))
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.is_connected()
    ack = sio.emit("subscribe", {"topic": "redemptions", "id": redemption.id}, callback=True)
    assert ack["ok"] and ack["snapshot"]["redemption"]["status"] == "awaiting_code"
    assert sio.emit("subscribe", {"topic": "redemptions", "id": 999}, callback=True) == {
        "ok": False,
        "error": "forbidden",
    }
    # Staff topics are not for vendor sockets.
    refused = sio.emit("subscribe", {"topic": "jobs"}, callback=True)
    assert refused["ok"] is False


def test_vendor_socket_hears_its_redemption_and_stops_after_sign_out(world, client, app):
    project, person, vendor = world
    phone = person.pii.phone
    sign_in(client, vendor)
    client.post(
        "/vendor/charge", data={"project_id": project.id, "phone": "9841000001", "amount": "1"}
    )
    redemption = db.session.scalar(select(Redemption))
    sio = socketio.test_client(app, flask_test_client=client)
    sio.emit("subscribe", {"topic": "redemptions", "id": redemption.id}, callback=True)
    sio.get_received()
    client.post(f"/vendor/payments/{redemption.id}/code", data={"code": last_code(phone)})
    heard = [e for e in sio.get_received() if e["name"] == "redemption.updated"]
    assert heard and heard[-1]["args"][0]["label"] == "Pending"
    client.post("/vendor/sign-out")
    assert not sio.is_connected()


def test_a_staff_socket_cannot_use_vendor_topics(world, client, app, make_user, login):
    login(client, make_user("admin"))
    sio = socketio.test_client(app, flask_test_client=client)
    assert sio.is_connected()
    ack = sio.emit("subscribe", {"topic": "redemptions"}, callback=True)
    assert ack == {"ok": False, "error": "signed out"}


def test_unused_codes_show_as_expired_on_the_home_page(world, client):
    project, _, vendor = world
    sign_in(client, vendor)
    client.post(
        "/vendor/charge", data={"project_id": project.id, "phone": "9841000001", "amount": "1"}
    )
    redemption = db.session.scalar(select(Redemption))
    redemption.code_expires_at = redemption.created_at
    db.session.commit()
    assert "Code expired" in client.get("/vendor/").get_data(as_text=True)
    # Shown expired, not written by the page: the sweeper writes it.
    assert db.session.get(Redemption, redemption.id).status == "awaiting_code"
    from portal.vendor_portal.sweep import sweep

    assert sweep()[0] == 1
    assert db.session.get(Redemption, redemption.id).status == "expired"


# --- who is paying, and the receipt's state --------------------------------------------------


def test_the_receipt_state_names_the_payer_masked_only_to_its_vendor(
    world, client, app, make_vendor, caplog
):
    """The state the receipt reads after (re)joining: in the vendor's scope only, the payer's
    masked name once the code is accepted, amounts in the project's currency, nothing of the
    payer in the logs."""
    project, person, vendor = world
    caplog.set_level("DEBUG")
    sign_in(client, vendor)
    client.post(
        "/vendor/charge", data={"project_id": project.id, "phone": "9841000001", "amount": "3"}
    )
    redemption = db.session.scalar(select(Redemption))
    url = f"/vendor/payments/{redemption.id}/state"
    before = client.get(url, headers={"Accept": "application/json"})
    assert before.status_code == 200 and before.headers["Cache-Control"] == "no-store"
    # A typed number: nobody's name until the code proves the payer is here.
    assert before.json["payer"] is None and before.json["status"] == "awaiting_code"
    assert before.json["amount"] == "NPR\u00a03.00"
    client.post(
        f"/vendor/payments/{redemption.id}/code", data={"code": last_code(person.pii.phone)}
    )
    after = client.get(url, headers={"Accept": "application/json"}).json
    masked = payer_names.mask(person.pii.name)
    assert masked and after["payer"] == masked and after["label"] == "Pending"
    sio = socketio.test_client(app, flask_test_client=client)
    ack = sio.emit("subscribe", {"topic": "redemptions", "id": redemption.id}, callback=True)
    assert ack["snapshot"]["redemption"]["payer"] == masked
    # What goes to the rooms (the operations room too) carries no name.
    sio.get_received()
    redemption_live.announce(db.session.get(Redemption, redemption.id))
    db.session.commit()
    heard = [e["args"][0] for e in sio.get_received() if e["name"] == "redemption.updated"]
    assert heard and all("payer" not in state for state in heard)

    other = make_vendor(project=project, status="approved")
    db.session.commit()
    stranger = app.test_client()
    sign_in(stranger, other)
    refused = stranger.get(url, headers={"Accept": "application/json"})
    assert refused.status_code == 404 and refused.mimetype == "application/problem+json"
    assert masked not in refused.get_data(as_text=True)
    signed_out = app.test_client().get(url)
    assert signed_out.status_code == 302 and "/vendor/sign-in" in signed_out.headers["Location"]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert masked not in logged and person.pii.name not in logged

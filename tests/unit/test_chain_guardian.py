"""The guardian's pause and the operator's caps from the project's Contracts page: who may,
the reason and confirmation, the contract paused and resumed by the treasury, every value move
refused while paused (with the vendor told on the phone), and a multisig treasury given the
unsigned calls instead."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEntry
from portal.chain import caps, contracts, guardian, setup, signers
from portal.chain.models import ChainTx
from portal.extensions import db
from portal.payouts import methods
from portal.redemptions import services as redemptions
from portal.redemptions.models import SETTLED, Redemption
from portal.settlements import services as settlements
from tests.unit.test_chain_settlement import (  # noqa: F401 - the fixture
    funded,
    last_code,
)
from tests.unit.test_vendor_portal import sign_in


def _actions() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_a_guardian_pauses_and_resumes_with_a_reason(funded, worker, app, make_user, login):  # noqa: F811
    project, pc, (person, _), vendor = funded
    # A charge started before the pause: its code is not taken while paused.
    started = redemptions.start(vendor, project, pc, person, 100, "phone")
    db.session.commit()
    started_id, code = started.id, last_code()
    guard, clerk = make_user("admin"), make_user("finance")
    staff, other = app.test_client(), app.test_client()
    login(staff, guard)
    login(other, clerk)
    page = staff.get(f"/projects/{project.id}/chain").get_data(as_text=True)
    assert "Pause payments" in page and 'data-paused-on-chain="no"' in page
    assert "Pause payments</button>" not in other.get(f"/projects/{project.id}/chain").get_data(
        as_text=True
    )
    url = f"/projects/{project.id}/chain/pause"
    assert other.post(url, data={"reason": "fraud", "confirm": "y"}).status_code == 403
    # No reason, or not confirmed: the form again with the field's error; nothing paused.
    assert staff.post(url, data={"reason": "", "confirm": "y"}).status_code == 422
    assert staff.post(url, data={"reason": "suspected fraud"}).status_code == 422
    assert guardian.paused(project.id) is None
    assert staff.post(url, data={"reason": "suspected fraud", "confirm": "y"}).status_code == 302
    assert staff.post(url, data={"reason": "again", "confirm": "y"}).status_code == 409
    db.session.expire_all()
    assert guardian.paused(project.id).pause_reason == "suspected fraud"
    worker.run("contracts")
    tx = db.session.scalar(select(ChainTx).where(ChainTx.purpose == "guardian.pause"))
    assert tx.signer.name == signers.TREASURY and tx.status == "confirmed"
    assert contracts.of_project(pc).functions.paused().call()
    assert "chain.paused" in _actions()
    # Every staff page of the project says so; every value move is refused.
    for path in (f"/projects/{project.id}/settlements", f"/projects/{project.id}/chain"):
        text = staff.get(path).get_data(as_text=True)
        assert 'id="project-paused"' in text and "suspected fraud" in text, path
    with pytest.raises(guardian.Paused):
        redemptions.start(vendor, project, pc, person, 100, "phone")
    with pytest.raises(guardian.Paused):
        settlements.request(project, vendor.id, 100, method_id=None)
    with pytest.raises(guardian.Paused):
        redemptions.confirm(vendor, started_id, code)
    db.session.rollback()
    # The vendor's phone: a plain message on the charge page, and a charge refused with it.
    phone = app.test_client()
    sign_in(phone, vendor)
    charge = phone.get("/vendor/charge").get_data(as_text=True)
    assert f'data-paused-project="{project.id}"' in charge and "Payments are paused" in charge
    refused = phone.post(
        "/vendor/charge",
        data={"project_id": project.id, "phone": person.pii.phone, "amount": "1.00"},
    )
    assert refused.status_code == 200 and "paused" in refused.get_data(as_text=True)
    cash_out = phone.get(f"/vendor/cash-out/{project.id}").get_data(as_text=True)
    assert f'data-paused-project="{project.id}"' in cash_out
    method = methods.add(
        vendor, {"kind": "momo", "account_name": "Shop", "account_number": "+256772000111"}
    )
    db.session.commit()
    asked = phone.post(
        f"/vendor/cash-out/{project.id}", data={"amount": "1.00", "method_id": method.id}
    )
    assert asked.status_code == 400 and "are paused" in asked.get_data(as_text=True)
    # Resumed: the contract and the portal move again.
    resume = f"/projects/{project.id}/chain/resume"
    assert staff.post(resume, data={"reason": "cleared", "confirm": ""}).status_code == 422
    assert staff.post(resume, data={"reason": "cleared", "confirm": "y"}).status_code == 302
    worker.run("contracts")
    db.session.expire_all()
    assert guardian.paused(project.id) is None
    assert not contracts.of_project(pc).functions.paused().call()
    assert "chain.unpaused" in _actions()
    # The charge started before the pause goes through with its code, now.
    assert redemptions.confirm(vendor, started_id, code).ok
    db.session.commit()
    worker.run("contracts")
    assert db.session.get(Redemption, started_id).status == SETTLED


def test_caps_are_set_from_the_page_by_a_permitted_user(funded, worker, app, make_user, login):  # noqa: F811
    project, _pc, _, _ = funded
    admin, clerk = make_user("admin"), make_user("finance")
    staff, other = app.test_client(), app.test_client()
    login(staff, admin)
    login(other, clerk)
    url = f"/projects/{project.id}/chain/caps"
    page = staff.get(f"/projects/{project.id}/chain").get_data(as_text=True)
    assert "Set the limit" in page and 'data-cap="settle"' in page
    assert "Set the limit" not in other.get(f"/projects/{project.id}/chain").get_data(as_text=True)
    good = {"action": "settle", "per_tx": "7.00", "per_day": "9.50"}
    assert other.post(url, data=good).status_code == 403
    for bad in (
        {**good, "per_tx": "10.00"},  # above the cap per day
        {**good, "per_day": "abc"},
        {**good, "per_tx": "1.001"},
        {**good, "action": "mint"},
    ):
        answer = staff.post(url, data=bad)
        assert answer.status_code == 422, bad
        assert 'class="error"' in answer.get_data(as_text=True)
    assert staff.post(url, data=good).status_code == 302
    worker.run("contracts")
    db.session.expire_all()
    assert caps.read(project.id)["settle"] == {"per_tx": 700, "per_day": 950, "left_today": 950}
    tx = db.session.scalar(select(ChainTx).where(ChainTx.purpose == "caps"))
    assert tx.signer.name == signers.TREASURY and tx.status == "confirmed"
    assert "chain.caps_changed" in _actions()
    assert "9.50" in staff.get(f"/projects/{project.id}/chain").get_data(as_text=True)


def test_a_multisig_treasury_gets_the_unsigned_calls(funded, worker, app, make_user, login):  # noqa: F811
    project, _pc, _, _ = funded
    address = signers.treasury_address()
    app.config.update(CHAIN_TREASURY_KEY=None, CHAIN_TREASURY_ADDRESS=address)
    try:
        admin = make_user("admin")
        staff = app.test_client()
        login(staff, admin)
        before = db.session.scalar(select(ChainTx.id).order_by(ChainTx.id.desc()).limit(1))
        answer = staff.post(
            f"/projects/{project.id}/chain/caps",
            data={"action": "redeem", "per_tx": "3.00", "per_day": "4.00"},
        )
        text = answer.get_data(as_text=True)
        setlimit = contracts.encode(contracts.ENTITLEMENTS_V2, "setLimit", 1, 300, 400)
        assert answer.status_code == 200 and 'id="unsigned-call"' in text and setlimit in text
        assert "chain.caps_prepared" in _actions()
        answer = staff.post(
            f"/projects/{project.id}/chain/pause", data={"reason": "audit", "confirm": "y"}
        )
        assert answer.status_code == 302
        page = staff.get(f"/projects/{project.id}/chain").get_data(as_text=True)
        pause_data = contracts.encode(contracts.ENTITLEMENTS_V2, "pause")
        assert "<code>pause()</code>" in page and pause_data in page
        # The portal's half holds at once; nothing was signed by the portal.
        assert guardian.paused(project.id) is not None
        after = db.session.scalar(select(ChainTx.id).order_by(ChainTx.id.desc()).limit(1))
        assert after == before
        assert not contracts.of_project(setup.state(project.id)).functions.paused().call()
    finally:
        app.config.update(CHAIN_TREASURY_KEY=None, CHAIN_TREASURY_ADDRESS=None)

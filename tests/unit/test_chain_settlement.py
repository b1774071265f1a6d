"""Version-2 projects on the in-process EVM: the treasury signer, the vendor allow-list,
redemptions held until a vendor is registered, settlement on chain and its signal."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import func, select

from portal import events
from portal.chain import addresses, contracts, settlement, setup, signers, txmanager
from portal.chain.models import ChainSettlement, ChainSigner, ChainTx, ChainVendor
from portal.comms.models import OutboxMessage
from portal.errors import Conflict
from portal.extensions import db
from portal.redemptions import services as redemptions
from portal.redemptions.models import ACCEPTED, SETTLED, Redemption
from portal.vendors import services as vendors
from tests.support import chain

CODE = re.compile(r"\b(\d{6})\b")
MINTER = bytes(contracts.Web3.keccak(text="MINTER_ROLE"))
OPERATOR = bytes(contracts.Web3.keccak(text="OPERATOR_ROLE"))
GUARDIAN = bytes(contracts.Web3.keccak(text="GUARDIAN_ROLE"))
ADMIN = b"\x00" * 32


def last_code() -> str:
    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
    return CODE.search(message.body).group(1)


@pytest.fixture
def funded(app, worker, make_project, make_beneficiary, make_vendor):
    project = make_project(status="active")
    people = [make_beneficiary(project=project) for _ in range(2)]
    vendor = make_vendor(project=project, status="approved")
    db.session.commit()
    chain.deploy(worker, project)
    chain.fund(worker, project, "100.00")
    chain.allocate(worker, project, amount="20.00", beneficiary_ids=[p.id for p in people])
    return project, setup.state(project.id), people, vendor


def redeem(worker, project, pc, person, vendor, amount=1250) -> Redemption:
    redemption = redemptions.start(vendor, project, pc, person, amount, "phone")
    db.session.commit()
    assert redemptions.confirm(vendor, redemption.id, last_code()).ok
    db.session.commit()
    worker.run("contracts")
    return db.session.get(Redemption, redemption.id)


# ---- the treasury signer ----


def test_the_treasury_key_lives_in_its_own_file_not_beside_the_operator(funded, app):
    _project, pc, _, _ = funded
    path = Path(app.config["INSTANCE_DIR"]) / signers.TREASURY_KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    key = path.read_text().strip()
    row = db.session.scalar(select(ChainSigner).where(ChainSigner.name == signers.TREASURY))
    assert row.private_key == signers.NO_KEY  # the database never sees it
    assert row.address == Account.from_key(key).address == pc.admin_address
    assert row.address != signers.operator().address


def test_admin_and_minter_belong_to_the_treasury_and_it_signs_the_mint(funded):
    _project, pc, _, _ = funded
    assert pc.version == 2
    treasury, operator = pc.admin_address, signers.operator().address
    token = contracts.at(contracts.PROJECT_TOKEN_V2, pc.token_address)
    ent = contracts.of_project(pc)
    assert token.functions.hasRole(MINTER, treasury).call()
    assert token.functions.hasRole(ADMIN, treasury).call()
    assert ent.functions.hasRole(ADMIN, treasury).call()
    assert ent.functions.hasRole(GUARDIAN, treasury).call()
    assert ent.functions.hasRole(OPERATOR, operator).call()
    for role in (MINTER, ADMIN):
        assert not token.functions.hasRole(role, operator).call()
    for role in (ADMIN, GUARDIAN):
        assert not ent.functions.hasRole(role, operator).call()
    mint = db.session.scalar(select(ChainTx).where(ChainTx.purpose == "fund"))
    assert mint.signer.name == signers.TREASURY and mint.status == "confirmed"
    assert token.functions.totalSupply().call() == pc.funded == 10_000


def test_the_operator_cannot_mint_on_a_version_2_project(funded):
    _project, pc, _, _ = funded
    data = contracts.encode(contracts.PROJECT_TOKEN, "mint", pc.contract_address, 1)
    with pytest.raises(txmanager.Reverted, match="AccessControlUnauthorizedAccount"):
        txmanager.submit(purpose="fund", to=pc.token_address, data=data, project_id=pc.project_id)


def test_production_refuses_to_start_without_a_treasury(monkeypatch):
    from config import ProductionConfig
    from portal import MissingSecrets, create_app

    for name in ("CHAIN_TREASURY_KEY", "CHAIN_TREASURY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingSecrets, match="CHAIN_TREASURY_KEY or CHAIN_TREASURY_ADDRESS"):
        create_app(ProductionConfig)
    monkeypatch.setenv("CHAIN_TREASURY_ADDRESS", "0x" + "12" * 20)
    with pytest.raises(MissingSecrets) as caught:
        create_app(ProductionConfig)
    assert "CHAIN_TREASURY" not in str(caught.value)


# ---- the vendor allow-list ----


def test_assigned_vendors_are_registered_and_removed_ones_unregistered(funded, worker, make_vendor):
    project, pc, _, vendor = funded
    ent = contracts.of_project(pc)
    assert ent.functions.isVendor(addresses.vendor_address(vendor.id)).call()
    assert db.session.get(ChainVendor, (project.id, vendor.id)).status == "registered"

    other = make_vendor(status="approved")
    db.session.commit()
    vendors.assign(other, project)
    db.session.commit()
    worker.run("contracts")
    assert ent.functions.isVendor(addresses.vendor_address(other.id)).call()

    vendors.unassign(other, project)
    db.session.commit()
    worker.run("contracts")
    assert not ent.functions.isVendor(addresses.vendor_address(other.id)).call()
    assert db.session.get(ChainVendor, (project.id, other.id)).status == "removed"
    # Running the sync again changes nothing and sends nothing.
    before = db.session.scalar(select(func.count()).select_from(ChainTx))
    from portal.chain import vendors as chain_vendors

    assert chain_vendors.sync(project.id, other.id) == "not registered"
    assert db.session.scalar(select(func.count()).select_from(ChainTx)) == before


def test_a_redemption_waits_for_the_vendors_registration(funded, worker):
    project, pc, (person, _), vendor = funded
    # As if the vendor had just been assigned: not on the allow-list yet.
    row = db.session.get(ChainVendor, (project.id, vendor.id))
    row.status = "registering"
    unregister = contracts.encode(
        contracts.ENTITLEMENTS_V2, "unregisterVendor", addresses.vendor_address(vendor.id)
    )
    txmanager.submit(purpose="test", to=pc.contract_address, data=unregister)
    db.session.commit()
    worker.run("contracts")  # the follow-up; nothing re-registers: no assignment changed
    db.session.get(ChainVendor, (project.id, vendor.id)).status = "registering"
    db.session.commit()

    redemption = redemptions.start(vendor, project, pc, person, 500, "phone")
    db.session.commit()
    assert redemptions.confirm(vendor, redemption.id, last_code()).ok
    db.session.commit()
    from portal.redemptions import transfer

    assert transfer.transfer(redemption.id) == "waiting for the vendor's registration on chain"
    db.session.commit()
    assert db.session.get(Redemption, redemption.id).status == ACCEPTED
    assert not db.session.scalar(select(ChainTx).where(ChainTx.purpose == "redeem"))

    worker.run("contracts")  # the registration the transfer asked for, then the transfer
    assert db.session.get(Redemption, redemption.id).status == SETTLED
    assert settlement.vendor_balance(project.id, vendor.id) == 500


# ---- settlement ----


def test_settle_burns_once_and_tells_the_settlement_flow(funded, worker):
    project, pc, (person, _), vendor = funded
    assert redeem(worker, project, pc, person, vendor).status == SETTLED
    heard = []

    def listen(row, *, action, data, **_):
        heard.append((action, data["key"], data["amount"]))

    events.chain_settlement_changed.connect(listen)
    try:
        tx = settlement.prepare_settle(project.id, "S-1", vendor.id, 1000)
        again = settlement.prepare_settle(project.id, "S-1", vendor.id, 1000)
        assert again.id == tx.id
        db.session.commit()
        worker.run("contracts")
    finally:
        events.chain_settlement_changed.disconnect(listen)
    row = db.session.scalar(select(ChainSettlement).where(ChainSettlement.key == "S-1"))
    assert row.status == "settled"
    assert heard == [("chain.settled", "S-1", 1000)]
    assert settlement.vendor_balance(project.id, vendor.id) == 250
    assert settlement.settled_on_chain(project.id, "S-1")
    token = contracts.at(contracts.PROJECT_TOKEN_V2, pc.token_address)
    assert token.functions.totalSupply().call() == 10_000 - 1000
    # The same key cannot be reused for other figures, nor settle twice.
    with pytest.raises(Conflict):
        settlement.prepare_settle(project.id, "S-1", vendor.id, 999)
    assert settlement.prepare_settle(project.id, "S-1", vendor.id, 1000).id == tx.id


def test_settling_more_than_the_vendor_holds_is_refused_and_reported(funded, worker):
    project, pc, (person, _), vendor = funded
    redeem(worker, project, pc, person, vendor, amount=300)
    with pytest.raises(txmanager.Reverted, match="InsufficientVendorBalance"):
        settlement.prepare_settle(project.id, "S-2", vendor.id, 301)
    db.session.commit()
    row = db.session.scalar(select(ChainSettlement).where(ChainSettlement.key == "S-2"))
    assert row.status == "failed"
    assert settlement.vendor_balance(project.id, vendor.id) == 300


def test_a_rolled_back_settlement_is_undone_once(funded, worker):
    project, pc, (person, _), vendor = funded
    redeem(worker, project, pc, person, vendor, amount=400)
    tx = settlement.prepare_settle(project.id, "S-3", vendor.id, 400)
    db.session.commit()
    worker.run("contracts")
    heard = []

    def listen(row, *, action, **_):
        heard.append(action)

    events.chain_settlement_changed.connect(listen)
    try:
        tx = db.session.get(ChainTx, tx.id)
        assert txmanager.roll_back(tx, "test reorg")
        assert txmanager.roll_back(tx, "test reorg") is False
        db.session.commit()
    finally:
        events.chain_settlement_changed.disconnect(listen)
    row = db.session.scalar(select(ChainSettlement).where(ChainSettlement.key == "S-3"))
    assert row.status == "settling"
    assert heard.count("chain.settle_undone") == 1


def test_a_version_1_project_cannot_settle(app, worker, make_project):
    app.config["CHAIN_CONTRACT_VERSION"] = 1
    project = make_project(status="active")
    db.session.commit()
    chain.deploy(worker, project)
    with pytest.raises(Conflict):
        settlement.prepare_settle(project.id, "S-4", 1, 100)


def test_the_treasury_changes_caps_and_the_contract_holds_the_operator_to_them(funded, worker, app):
    project, pc, (person, _), vendor = funded
    result = app.test_cli_runner().invoke(
        args=[
            "chain-caps",
            "--project",
            str(project.id),
            "--action",
            "redeem",
            "--per-tx",
            "5.00",
            "--per-day",
            "8.00",
        ]
    )
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    worker.run("contracts")
    from portal.chain import caps

    assert caps.read(project.id)["redeem"] == {"per_tx": 500, "per_day": 800, "left_today": 800}
    tx = db.session.scalar(select(ChainTx).where(ChainTx.purpose == "caps"))
    assert tx.signer.name == signers.TREASURY and tx.status == "confirmed"
    # Over the cap per transaction: the contract refuses the redeem, the redemption fails.
    redemption = redeem(worker, project, pc, person, vendor, amount=600)
    assert redemption.status == "failed"
    assert "OverTransactionCap" in (redemption.error or "")
    bad = app.test_cli_runner().invoke(
        args=[
            "chain-caps",
            "--project",
            str(project.id),
            "--action",
            "redeem",
            "--per-tx",
            "9.00",
            "--per-day",
            "8.00",
        ]
    )
    assert bad.exit_code == 1 and "above the cap per day" in bad.output


def test_a_settlement_requested_from_a_job_is_signed_by_the_job(funded, worker):
    project, pc, (person, _), vendor = funded
    redeem(worker, project, pc, person, vendor, amount=700)
    row = settlement.request_settle(project.id, "S-job", vendor.id, 700)
    assert row.tx_id is None
    db.session.commit()
    worker.run("contracts")
    row = db.session.get(ChainSettlement, row.id)
    assert row.status == "settled" and row.tx_id is not None
    assert settlement.vendor_balance(project.id, vendor.id) == 0
    assert settlement.send(row.id).endswith("(confirmed)")  # again: the same transaction

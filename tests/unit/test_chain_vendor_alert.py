"""A vendor the contract will not register: counted per try, given up after MAX_TRIES with one
chain alert staff see (transactions page, home page), and tried afresh by Retry."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.chain import addresses, alerts, contracts, signers, txmanager
from portal.chain import vendors as chain_vendors
from portal.chain.models import ChainAlert, ChainVendor
from portal.extensions import db
from portal.vendors import services as vendors
from tests.unit.test_chain_settlement import OPERATOR, funded  # noqa: F401 - the fixture


def _role(pc, function: str, worker) -> None:
    """The treasury (admin) grants or revokes the operator's role, as an incident would."""
    txmanager.submit(
        purpose="test.role",
        to=pc.contract_address,
        data=contracts.encode(
            contracts.ENTITLEMENTS_V2, function, OPERATOR, signers.operator().address
        ),
        project_id=pc.project_id,
        signer=signers.treasury(),
    )
    db.session.commit()
    worker.run("contracts")


def _open_alerts() -> list[ChainAlert]:
    return list(
        db.session.scalars(
            select(ChainAlert).where(
                ChainAlert.kind == alerts.VENDOR_REGISTRATION, ChainAlert.resolved_at.is_(None)
            )
        )
    )


def test_a_refused_registration_alerts_once_and_retry_registers(
    funded,  # noqa: F811
    worker,
    app,
    make_vendor,
    make_user,
    login,
):
    project, pc, _, _ = funded
    _role(pc, "revokeRole", worker)
    shop = make_vendor(status="approved")
    db.session.commit()
    vendors.assign(shop, project)
    db.session.commit()
    app.config["CHAIN_VENDOR_RETRY_SECONDS"] = 0  # each refused try looks again at once
    worker.run("contracts")
    row = db.session.get(ChainVendor, (project.id, shop.id), populate_existing=True)
    assert (row.status, row.failures) == (chain_vendors.GAVE_UP, chain_vendors.MAX_TRIES)
    (alert,) = _open_alerts()
    assert f"Vendor {shop.id}" in alert.message and "Retry" in alert.message
    # Given up: a later sync (a retried job, a duplicate message) sends nothing, alerts no more.
    assert "given up" in chain_vendors.sync(project.id, shop.id)
    db.session.commit()
    assert len(_open_alerts()) == 1

    # Staff see it with a Retry; only chain.manage may press it.
    admin, viewer = make_user("admin"), make_user("finance approver")
    staff, other = app.test_client(), app.test_client()
    login(staff, admin)
    login(other, viewer)
    page = staff.get(f"/projects/{project.id}/transactions").get_data(as_text=True)
    retry_url = f"/projects/{project.id}/chain/vendors/{shop.id}/retry"
    assert 'id="chain-alerts"' in page and retry_url in page
    home = staff.get("/").get_data(as_text=True)
    assert "payment network alert" in home
    assert other.post(retry_url).status_code == 403

    # The cause fixed (the operator's role back), Retry registers the vendor and closes it.
    _role(pc, "grantRole", worker)
    assert staff.post(retry_url).status_code == 302
    worker.run("contracts")
    db.session.expire_all()
    row = db.session.get(ChainVendor, (project.id, shop.id))
    assert (row.status, row.failures) == ("registered", 0)
    assert contracts.of_project(pc).functions.isVendor(addresses.vendor_address(shop.id)).call()
    assert not _open_alerts()
    # A second press finds nothing to retry.
    assert staff.post(retry_url).status_code == 302
    assert db.session.scalar(select(func.count()).select_from(ChainAlert)) == 1

"""``seed-demo`` leaves the settlement pages something to show: payout methods for the demo's
vendors, payments they took on chain, and cash-outs reconciled, settled on chain waiting for a
bank batch, rejected and waiting for approval."""

from __future__ import annotations

from sqlalchemy import select

from portal.accounts.models import User
from portal.chain import setup
from portal.extensions import db
from portal.payouts.models import Payout, PayoutMethod
from portal.projects.models import Project
from portal.reconciliation.models import StatementLine
from portal.redemptions.models import SETTLED, Redemption
from portal.settlements import owed
from portal.settlements.models import Settlement


def test_the_demo_has_settlements_in_several_states(app, login):
    from portal.demo import ADMIN_EMAIL, seed_demo

    accounts = seed_demo(count=12)
    db.session.commit()
    project = db.session.scalar(select(Project))
    pc = setup.state(project.id)
    assert db.session.scalar(select(PayoutMethod.id).limit(1)) is not None
    paid = db.session.scalars(select(Redemption).where(Redemption.status == SETTLED)).all()
    assert len(paid) == 6
    rows = db.session.scalars(select(Settlement).order_by(Settlement.id)).all()
    assert [(s.status, s.by_vendor) for s in rows] == [
        ("reconciled", False),
        ("payout_sent", False),  # its bank payout waits for the next batch
        ("failed", False),
        ("requested", True),
    ]
    reconciled = db.session.get(Payout, rows[0].payout_id)
    assert reconciled.books == "matched" and reconciled.kind == "bank"
    line = db.session.scalar(select(StatementLine))
    assert line.reference == reconciled.line_reference.lower() and line.state == "matched"
    assert db.session.get(Payout, rows[1].payout_id).status == "pending"
    # What is owed agrees: every payment, less what the chain burned.
    earned = sum(r.amount for r in paid)
    assert owed.totals(owed.of_project(project.id))["owed"] == earned - 70_000
    assert pc.funded > 0
    # The pages show it to the demo admin.
    client = app.test_client()
    admin = db.session.scalar(select(User).where(User.email == ADMIN_EMAIL))
    login(client, admin, accounts[ADMIN_EMAIL])
    listing = client.get(f"/projects/{project.id}/settlements").get_data(as_text=True)
    assert listing.count("data-settlement-id=") == 4
    assert "Reconciled" in listing and "Waiting for approval" in listing
    assert client.get(f"/projects/{project.id}/settlements/owed").status_code == 200

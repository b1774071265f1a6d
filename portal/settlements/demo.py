"""Settlements for the demo (``flask seed-demo`` on the embedded chain): payout methods for the
demo's vendors, a few payments they took, and cash-outs in the states finance meets, so the
Settlements, Owed, Payouts and Reconciliation pages are not empty.

Everything goes through the real services and jobs (run inline, as ``chain.demo`` does): the
vendor charges with the code the beneficiary received (read from the development outbox, the
only place a demo code goes), the demo admin asks, the demo approver approves or rejects, the
chain burns, a bank batch is built and marked sent, and a statement matches one line.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from sqlalchemy import select

from portal.approvals import services as approvals
from portal.approvals.models import ApprovalRequest
from portal.beneficiaries.models import Beneficiary
from portal.chain import setup
from portal.chain.demo import CHAIN_KINDS, run_jobs_inline
from portal.comms.models import OutboxMessage
from portal.disbursements.models import Entitlement
from portal.extensions import db
from portal.payouts import batches, methods
from portal.payouts.models import Payout
from portal.reconciliation import services as reconciliation
from portal.redemptions import services as redemptions
from portal.settlements import services as settlements
from portal.vendors.models import APPROVED, Vendor, VendorProject

KINDS = (*CHAIN_KINDS, "comms.sms", "redemptions.transfer", "chain.settle")
CODE = re.compile(r"\b(\d{6})\b")
# (vendor's place among the project's approved vendors, payments in base units)
PAYMENTS = ((0, (25_000, 18_000, 32_000, 15_000)), (1, (12_000, 9_500)))


def _code_for(redemption_id: int, phone_tail: str) -> str:
    run_jobs_inline(KINDS)
    for message in db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.purpose == redemptions.SMS_PURPOSE)
        .order_by(OutboxMessage.id.desc())
        .limit(5)
    ):
        if (message.recipient or "").endswith(phone_tail) and (
            found := CODE.search(message.body or "")
        ):
            return found.group(1)
    raise RuntimeError(f"no code was sent for demo payment {redemption_id}")


def _methods(shop: Vendor, pharmacy: Vendor) -> None:
    methods.add(
        shop,
        {
            "kind": "bank",
            "account_name": shop.name,
            "account_number": "0012345678901",
            "bank_code": "NABILNPKA",
        },
        user_id=None,
    )
    methods.add(
        pharmacy,
        {
            "kind": "bank",
            "account_name": pharmacy.name,
            "account_number": "0023456789012",
            "bank_code": "NICENPKA",
        },
        user_id=None,
    )
    methods.add(
        pharmacy,
        {"kind": "momo", "account_name": pharmacy.name, "account_number": "+9779851000111"},
        user_id=None,
    )


def _pay(project, pc, vendors: list[Vendor]) -> None:
    people = db.session.scalars(
        select(Beneficiary)
        .join(Entitlement, Entitlement.beneficiary_id == Beneficiary.id)
        .where(Entitlement.project_id == project.id)
        .order_by(Beneficiary.id)
    ).all()
    n = 0
    for place, amounts in PAYMENTS:
        for amount in amounts:
            person = people[n]
            n += 1
            redemption = redemptions.start(vendors[place], project, pc, person, amount, "phone")
            db.session.commit()
            code = _code_for(redemption.id, person.pii.phone[-7:])
            redemptions.confirm(vendors[place], redemption.id, code)
            db.session.commit()
            run_jobs_inline(KINDS)


def _ask(project, vendor: Vendor, amount: int, user_id: int | None) -> ApprovalRequest:
    row = settlements.request(
        project, vendor.id, amount, method_id=None, user_id=user_id, by_vendor=user_id is None
    )
    db.session.commit()
    return db.session.get(ApprovalRequest, row.approval_id)


def _reconcile(project, payout_ids: list[int], user_id: int) -> None:
    payouts = db.session.scalars(select(Payout).where(Payout.id.in_(payout_ids))).all()
    lines = ["reference,amount,currency,status"] + [
        f"{p.line_reference},{p.amount // 100}.{p.amount % 100:02d},{p.currency},PAID"
        for p in payouts
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "statement.csv"
        path.write_text("\n".join(lines) + "\n")
        reconciliation.upload(project, path, "demo-bank-statement.csv", user_id)
    db.session.commit()


def seed_settlements(project, *, requester, approver) -> None:
    """After ``seed_chain``: methods, six payments, and cash-outs reconciled, burned on chain
    with its bank payout waiting for the next batch, rejected, and waiting for approval."""
    pc = setup.state(project.id)
    vendors = db.session.scalars(
        select(Vendor)
        .join(VendorProject, VendorProject.vendor_id == Vendor.id)
        .where(VendorProject.project_id == project.id, Vendor.status == APPROVED)
        .order_by(Vendor.id)
    ).all()
    shop, pharmacy = vendors[0], vendors[1]
    _methods(shop, pharmacy)
    db.session.commit()
    run_jobs_inline(KINDS)  # the vendors' registration on the contract
    _pay(project, pc, vendors)
    # Paid by a bank file and matched on the bank's statement: reconciled.
    approvals.approve(_ask(project, shop, 40_000, requester.id), approver, "Invoice checked")
    db.session.commit()
    run_jobs_inline(KINDS)
    batch = batches.build(project.id, requester.id)
    batches.mark_sent(batch, requester.id)
    db.session.commit()
    _reconcile(project, [p.id for p in batches.payouts_of(batch.id)], requester.id)
    # Burned on chain; its bank payout waits for the next batch.
    approvals.approve(_ask(project, shop, 30_000, requester.id), approver, "")
    db.session.commit()
    run_jobs_inline(KINDS)
    # Rejected: the amount is available to cash out again.
    approvals.reject(
        _ask(project, pharmacy, 5_000, requester.id), approver, "Demo: does not match the invoice"
    )
    db.session.commit()
    # Asked by the vendor on the phone, waiting for approval.
    _ask(project, pharmacy, 15_000, None)

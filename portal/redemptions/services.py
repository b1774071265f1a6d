"""Redemptions: find the beneficiary, send the code, accept it once, hand the transfer to the
chain, then settle, or give the reservation back, when the chain answers.

Never twice: accepting a code is one conditional UPDATE of the redemption (it must still wait for
this very code, within its tries and its time), and in the same transaction one conditional
UPDATE of the entitlement reserves the amount (only if that much is left). Only then is the
transfer job recorded, so a code entered fifty times at once yields one reservation and one job.
The job hands the transfer to the chain once (it looks for a transaction already signed for the
redemption), and the contract itself refuses a redemption id it has seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select, update

from portal.audit import services as audit
from portal.beneficiaries import normalize
from portal.beneficiaries.models import ACTIVE as PERSON_ACTIVE
from portal.beneficiaries.models import Beneficiary, BeneficiaryPII, ProjectBeneficiary
from portal.cards import services as cards
from portal.chain import addresses, contracts, setup, txmanager
from portal.chain.models import CONFIRMED as TX_CONFIRMED
from portal.chain.models import DEPLOYED, ChainTx, ProjectChain
from portal.comms import services as comms
from portal.crypto import blind_index
from portal.disbursements.models import Entitlement
from portal.errors import Conflict, Forbidden, NotFound, ValidationFailed
from portal.extensions import db
from portal.jobs import dispatch
from portal.jobs.kinds import REDEMPTION_TRANSFER
from portal.jobs.lifecycle import PermanentJobError
from portal.projects.models import ACTIVE as PROJECT_ACTIVE
from portal.projects.models import Project
from portal.redemptions import codes
from portal.redemptions.live import announce, money
from portal.redemptions.models import (
    ACCEPTED,
    AWAITING,
    BY_CARD,
    BY_PHONE,
    CANCELLED,
    FAILED,
    IN_FLIGHT,
    SETTLED,
    SUBMITTED,
    Redemption,
)
from portal.settings.services import default_country
from portal.timeutil import utcnow
from portal.vendors.models import APPROVED, Vendor, VendorProject

REF = "redemption"  # ChainTx.ref_type
CODE_PURPOSE = "redemption"  # bound into the code's hash
SMS_PURPOSE = "redemption.code"
SHORT = "short"  # the code was right but the entitlement no longer covers the amount


@dataclass(frozen=True)
class Confirmation:
    outcome: str  # codes.ACCEPTED / WRONG / LOCKED / EXPIRED / USED, or SHORT
    redemption: Redemption
    tries_left: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome == codes.ACCEPTED


def _audit(redemption: Redemption, action: str, summary: str, actor: str | None = None):
    audit.record(
        action,
        summary,
        target=redemption,
        project_id=redemption.project_id,
        data={"vendor_id": redemption.vendor_id, "amount": redemption.amount},
        actor_id=None,
        actor_label=actor or "system",
    )


def _reload(redemption_id: int) -> Redemption:
    return db.session.get(Redemption, redemption_id, populate_existing=True)


def _move(redemption_id: int, from_statuses: tuple[str, ...], to_status: str, **values) -> bool:
    """One conditional UPDATE: True only if the redemption was in one of ``from_statuses``."""
    done = db.session.execute(
        update(Redemption)
        .where(Redemption.id == redemption_id, Redemption.status.in_(from_statuses))
        .values(status=to_status, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    return done == 1


# --- what a vendor may charge -----------------------------------------------------------------


def chargeable_projects(vendor: Vendor) -> list[tuple[Project, ProjectChain]]:
    """Active projects the vendor serves whose entitlements contract is deployed."""
    rows = db.session.execute(
        select(Project, ProjectChain)
        .join(VendorProject, VendorProject.project_id == Project.id)
        .join(ProjectChain, ProjectChain.project_id == Project.id)
        .where(
            VendorProject.vendor_id == vendor.id,
            Project.status == PROJECT_ACTIVE,
            ProjectChain.status == DEPLOYED,
            ProjectChain.contract_kind == contracts.ENTITLEMENTS,
        )
        .order_by(Project.name, Project.id)
    ).all()
    return [(project, pc) for project, pc in rows]


def chargeable_project(vendor: Vendor, project_id: int | None) -> tuple[Project, ProjectChain]:
    for project, pc in chargeable_projects(vendor):
        if project.id == project_id:
            return project, pc
    raise ValidationFailed({"project_id": "Choose one of your projects."})


def entitlement(project_id: int, beneficiary_id: int) -> Entitlement | None:
    return db.session.scalar(
        select(Entitlement).where(
            Entitlement.project_id == project_id, Entitlement.beneficiary_id == beneficiary_id
        )
    )


def find_beneficiary(
    project: Project, *, card: str = "", phone: str = ""
) -> tuple[Beneficiary, str]:
    """The beneficiary a scanned or typed card, or a phone number, points to in this project."""
    if (card or "").strip():
        field, method = "card", BY_CARD
        missing = "No working card of this project matches this code."
        person = cards.resolve(card)
    elif (phone or "").strip():
        field, method = "phone", BY_PHONE
        missing = "Nobody in this project has this phone number."
        try:
            e164 = normalize.phone_e164(phone, default_country())
        except normalize.InvalidValue as exc:
            raise ValidationFailed({"phone": str(exc)}) from None
        person_id = db.session.scalar(
            select(BeneficiaryPII.beneficiary_id).where(
                BeneficiaryPII.phone_index == blind_index("phone:" + e164)
            )
        )
        person = db.session.get(Beneficiary, person_id) if person_id else None
    else:
        raise ValidationFailed({"card": "Scan the card or type its code, or enter a phone number."})
    member = person is not None and db.session.scalar(
        select(ProjectBeneficiary.id).where(
            ProjectBeneficiary.project_id == project.id,
            ProjectBeneficiary.beneficiary_id == person.id,
        )
    )
    if not member or person.status != PERSON_ACTIVE:
        raise ValidationFailed({field: missing})
    return person, method


# --- starting, confirming, resending, cancelling --------------------------------------------


def _code_text(code: str, redemption: Redemption, vendor: Vendor, pc: ProjectChain) -> str:
    minutes = max(int(codes.ttl().total_seconds() // 60), 1)
    return (
        f"{code} is your code to pay {money(redemption.amount, pc)} at {vendor.name[:40]}. "
        f"Give it only to pay there. It expires in {minutes} minutes."
    )


def _send_code(redemption: Redemption, vendor: Vendor, pc: ProjectChain, code: str) -> None:
    person = db.session.get(Beneficiary, redemption.beneficiary_id)
    comms.send_sms(
        person.pii.phone,
        _code_text(code, redemption, vendor, pc),
        SMS_PURPOSE,
        expires_at=redemption.code_expires_at,
        project_id=redemption.project_id,
    )


def start(
    vendor: Vendor,
    project: Project,
    pc: ProjectChain,
    person: Beneficiary,
    amount: int,
    method: str,
) -> Redemption:
    """Check what is left, and send the beneficiary a code bound to this redemption and amount."""
    if vendor.status != APPROVED:
        raise Forbidden("Only an approved vendor can charge.")
    held = entitlement(project.id, person.id)
    remaining = held.remaining if held else 0
    if remaining <= 0:
        raise ValidationFailed({"amount": "This beneficiary has nothing left to spend here."})
    if amount > remaining:
        raise ValidationFailed({"amount": f"Only {money(remaining, pc)} is left."})
    # A vendor who starts again for the same person does not leave a second live code behind.
    _supersede(vendor.id, person.id)
    now = utcnow()
    redemption = Redemption(
        project_id=project.id,
        vendor_id=vendor.id,
        beneficiary_id=person.id,
        amount=amount,
        method=method,
        status=AWAITING,
        code_expires_at=now + codes.ttl(),
        last_sent_at=now,
        created_at=now,
        tries=0,
        resends=0,
    )
    db.session.add(redemption)
    db.session.flush()
    code = codes.new_code()
    redemption.code_hash = codes.digest(CODE_PURPOSE, redemption.id, redemption.amount, code=code)
    _send_code(redemption, vendor, pc, code)
    db.session.flush()
    _audit(
        redemption,
        "redemption.started",
        f"Redemption {redemption.id}: vendor {vendor.id} charges {person.ref} "
        f"{money(amount, pc)} ({method}); code sent",
        f"vendor:{vendor.id}",
    )
    announce(redemption)
    return redemption


def _supersede(vendor_id: int, beneficiary_id: int) -> None:
    ids = db.session.scalars(
        select(Redemption.id).where(
            Redemption.vendor_id == vendor_id,
            Redemption.beneficiary_id == beneficiary_id,
            Redemption.status == AWAITING,
        )
    ).all()
    for redemption_id in ids:
        if _move(
            redemption_id,
            (AWAITING,),
            CANCELLED,
            code_hash=None,
            error="Replaced by a new charge.",
            finished_at=utcnow(),
        ):
            announce(_reload(redemption_id))


def get_for_vendor(vendor: Vendor, redemption_id: int) -> Redemption:
    redemption = db.session.get(Redemption, redemption_id)
    if redemption is None or redemption.vendor_id != vendor.id:
        raise NotFound("No such payment.")
    return redemption


def expire_if_due(redemption: Redemption) -> Redemption:
    due = redemption.status == AWAITING and redemption.code_expires_at <= utcnow()
    if due and codes.expire(Redemption, redemption.id):
        redemption = _reload(redemption.id)
        announce(redemption)
    return redemption


def expire_due(vendor_id: int) -> int:
    """Expire the vendor's redemptions whose code ran out unused (nobody may have looked)."""
    ids = db.session.scalars(
        select(Redemption.id).where(
            Redemption.vendor_id == vendor_id,
            Redemption.status == AWAITING,
            Redemption.code_expires_at <= utcnow(),
        )
    ).all()
    expired = [rid for rid in ids if codes.expire(Redemption, rid)]
    for redemption_id in expired:
        announce(_reload(redemption_id))
    return len(expired)


def _reserve(redemption: Redemption) -> bool:
    left = Entitlement.allocated - Entitlement.redeemed - Entitlement.revoked
    return (
        db.session.execute(
            update(Entitlement)
            .where(
                Entitlement.project_id == redemption.project_id,
                Entitlement.beneficiary_id == redemption.beneficiary_id,
                left >= redemption.amount,
            )
            .values(redeemed=Entitlement.redeemed + redemption.amount, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def _give_back(redemption: Redemption) -> None:
    db.session.execute(
        update(Entitlement)
        .where(
            Entitlement.project_id == redemption.project_id,
            Entitlement.beneficiary_id == redemption.beneficiary_id,
            Entitlement.redeemed >= redemption.amount,
        )
        .values(redeemed=Entitlement.redeemed - redemption.amount, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def confirm(vendor: Vendor, redemption_id: int, typed: str) -> Confirmation:
    """The vendor types the beneficiary's code. At most one caller ever gets ACCEPTED."""
    redemption = get_for_vendor(vendor, redemption_id)
    code = codes.clean(typed)
    if code is None:
        raise ValidationFailed({"code": "Enter the 6 digits of the code."})
    code_digest = codes.digest(CODE_PURPOSE, redemption.id, redemption.amount, code=code)
    if not codes.accept(Redemption, redemption.id, code_digest, ACCEPTED, confirmed_at=utcnow()):
        check = codes.refuse(Redemption, redemption.id)
        redemption = _reload(redemption.id)
        if check.outcome in (codes.LOCKED, codes.EXPIRED):
            announce(redemption)
        return Confirmation(check.outcome, redemption, check.tries_left)
    if not _reserve(redemption):
        _move(
            redemption.id,
            (ACCEPTED,),
            FAILED,
            error="Not enough entitlement left when the code was entered.",
            finished_at=utcnow(),
        )
        redemption = _reload(redemption.id)
        _audit(redemption, "redemption.failed", f"Redemption {redemption.id}: not enough left")
        announce(redemption)
        return Confirmation(SHORT, redemption)
    job = dispatch.enqueue(
        REDEMPTION_TRANSFER.name, {"redemption_id": redemption.id}, project_id=redemption.project_id
    )
    db.session.execute(
        update(Redemption)
        .where(Redemption.id == redemption.id)
        .values(job_id=job.id)
        .execution_options(synchronize_session=False)
    )
    redemption = _reload(redemption.id)
    _audit(
        redemption,
        "redemption.accepted",
        f"Redemption {redemption.id}: code accepted, amount reserved, transfer job {job.id}",
        f"vendor:{vendor.id}",
    )
    announce(redemption)
    return Confirmation(codes.ACCEPTED, redemption)


def resend(vendor: Vendor, redemption_id: int) -> Redemption:
    """A new code (the old one stops working), within the resend limit and gap."""
    redemption = expire_if_due(get_for_vendor(vendor, redemption_id))
    wait = codes.resend_wait(redemption)
    if wait < 0:
        raise Conflict("No more codes can be sent for this payment. Start a new charge.")
    if wait > 0:
        raise Conflict(f"Wait {wait} seconds before sending another code.")
    code = codes.new_code()
    code_digest = codes.digest(CODE_PURPOSE, redemption.id, redemption.amount, code=code)
    if not codes.renew(Redemption, redemption.id, code_digest):
        raise Conflict("A code was sent a moment ago. Wait a little before asking again.")
    redemption = _reload(redemption.id)
    _send_code(redemption, vendor, db.session.get(ProjectChain, redemption.project_id), code)
    announce(redemption)
    return redemption


def cancel(vendor: Vendor, redemption_id: int) -> bool:
    redemption = get_for_vendor(vendor, redemption_id)
    if not _move(
        redemption.id,
        (AWAITING,),
        CANCELLED,
        code_hash=None,
        error="Cancelled by the vendor. Nothing was taken.",
        finished_at=utcnow(),
    ):
        return False
    redemption = _reload(redemption.id)
    _audit(
        redemption, "redemption.cancelled", f"Redemption {redemption.id} cancelled by the vendor"
    )
    announce(redemption)
    return True


def stop_for_vendor(vendor_id: int, reason: str) -> int:
    """Cancel a vendor's redemptions not yet handed to the chain; give reservations back."""
    ids = db.session.scalars(
        select(Redemption.id).where(
            Redemption.vendor_id == vendor_id, Redemption.status.in_((AWAITING, ACCEPTED))
        )
    ).all()
    stopped = 0
    for redemption_id in ids:
        values = {"code_hash": None, "error": reason, "finished_at": utcnow()}
        if _move(redemption_id, (AWAITING,), CANCELLED, **values):
            pass
        elif _move(redemption_id, (ACCEPTED,), CANCELLED, **values):
            _give_back(_reload(redemption_id))
        else:
            continue  # already on its way to the chain, or finished
        stopped += 1
        redemption = _reload(redemption_id)
        _audit(redemption, "redemption.cancelled", f"Redemption {redemption_id} stopped: {reason}")
        announce(redemption)
    return stopped


# --- the chain step and its outcome ---------------------------------------------------------


def _signed_tx(redemption_id: int) -> ChainTx | None:
    """A transaction already signed for this redemption (one refused before signing has no
    nonce and does not count)."""
    return db.session.scalar(
        select(ChainTx)
        .where(ChainTx.ref_type == REF, ChainTx.ref_id == redemption_id, ChainTx.nonce.is_not(None))
        .order_by(ChainTx.id.desc())
        .limit(1)
    )


def transfer(redemption_id: int) -> str:
    """The ``redemptions.transfer`` job: send the redeem call once.

    ``txmanager.submit`` commits: the move to ``submitted`` is committed before anything is
    signed, so a suspension arriving meanwhile no longer cancels a transfer under way.
    """
    redemption = db.session.get(Redemption, redemption_id)
    if redemption is None:
        raise PermanentJobError("The redemption this job was for no longer exists.")
    if redemption.status not in IN_FLIGHT:
        return f"nothing to do: the redemption is {redemption.status}"
    signed = _signed_tx(redemption.id)
    if signed is not None:
        _move(redemption.id, (ACCEPTED,), SUBMITTED, submitted_at=utcnow())
        db.session.execute(
            update(Redemption)
            .where(Redemption.id == redemption.id, Redemption.chain_tx_id.is_(None))
            .values(chain_tx_id=signed.id)
            .execution_options(synchronize_session=False)
        )
        return f"already sent as transaction {signed.id}"
    pc = setup.state(redemption.project_id)
    if pc is None or pc.status != DEPLOYED or pc.contract_kind != contracts.ENTITLEMENTS:
        fail(redemption.id, "The project has no deployed entitlements contract.")
        return "no contract"
    vendor = db.session.get(Vendor, redemption.vendor_id)
    if redemption.status == ACCEPTED and vendor.status != APPROVED:
        stop_for_vendor(vendor.id, "The vendor is no longer approved. Nothing was taken.")
        return "vendor no longer approved"
    key = addresses.redemption_key(redemption.id)
    contract = contracts.at(pc.contract_kind, pc.contract_address)
    if contract.functions.redemptionDone(key).call():
        # Mined before a crash but never recorded here: the chain is the truth.
        settle(redemption.id)
        return "found done on chain"
    if redemption.status == ACCEPTED and not _move(
        redemption.id, (ACCEPTED,), SUBMITTED, submitted_at=utcnow()
    ):
        return f"nothing to do: the redemption is {_reload(redemption.id).status}"
    held = entitlement(redemption.project_id, redemption.beneficiary_id)
    data = contracts.encode(
        pc.contract_kind,
        "redeem",
        key,
        held.address,
        addresses.vendor_address(vendor.id),
        redemption.amount,
    )
    announce(_reload(redemption.id))
    try:
        tx = txmanager.submit(
            purpose="redeem",
            to=pc.contract_address,
            data=data,
            project_id=redemption.project_id,
            ref=(REF, redemption.id),
        )
    except txmanager.Reverted as exc:
        fail(redemption.id, f"Refused by the contract: {exc.reason}", exc.tx.id)
        return "refused by the contract"
    db.session.execute(
        update(Redemption)
        .where(Redemption.id == redemption.id, Redemption.chain_tx_id.is_(None))
        .values(chain_tx_id=tx.id)
        .execution_options(synchronize_session=False)
    )
    return f"sent as transaction {tx.id}"


def settle(redemption_id: int, tx_id: int | None = None) -> bool:
    now = utcnow()
    values = {"settled_at": now, "finished_at": now, "error": None}
    if tx_id is not None:
        values["chain_tx_id"] = tx_id
    if not _move(redemption_id, IN_FLIGHT, SETTLED, **values):
        return False
    redemption = _reload(redemption_id)
    _audit(redemption, "redemption.settled", f"Redemption {redemption_id} settled on chain")
    announce(redemption)
    return True


def fail(redemption_id: int, error: str, tx_id: int | None = None) -> bool:
    """The transfer did not happen: mark it failed and give the reservation back (once)."""
    values = {"error": (error or "The transfer failed.")[:2000], "finished_at": utcnow()}
    if tx_id is not None:
        values["chain_tx_id"] = tx_id
    if not _move(redemption_id, IN_FLIGHT, FAILED, **values):
        return False
    redemption = _reload(redemption_id)
    _give_back(redemption)
    _audit(redemption, "redemption.failed", f"Redemption {redemption_id} failed; amount given back")
    announce(redemption)
    return True


def on_chain_final(tx: ChainTx) -> None:
    if tx.ref_type != REF or tx.ref_id is None:
        return
    redemption = db.session.get(Redemption, tx.ref_id)
    if redemption is None or redemption.chain_tx_id not in (None, tx.id):
        return
    if tx.status == TX_CONFIRMED:
        settle(redemption.id, tx.id)
    else:
        fail(redemption.id, tx.error or "The transfer failed on chain.", tx.id)


# --- what the vendor sees -------------------------------------------------------------------


def since(vendor_id: int, start: datetime) -> list[Redemption]:
    return list(
        db.session.scalars(
            select(Redemption)
            .where(Redemption.vendor_id == vendor_id, Redemption.created_at >= start)
            .order_by(Redemption.id.desc())
            .limit(100)
        )
    )


def recent(vendor_id: int, hours: int = 24) -> list[Redemption]:
    return since(vendor_id, utcnow() - timedelta(hours=hours))


def history(vendor_id: int) -> Select:
    return (
        select(Redemption).where(Redemption.vendor_id == vendor_id).order_by(Redemption.id.desc())
    )


@dataclass
class Balance:
    project: Project
    chain: ProjectChain
    settled: int = 0
    pending: int = 0
    count: int = 0

    @property
    def settled_text(self) -> str:
        return money(self.settled, self.chain)

    @property
    def pending_text(self) -> str:
        return money(self.pending, self.chain)


def balances(vendor: Vendor) -> list[Balance]:
    """Per project the vendor serves: what has settled on chain, and what is on its way."""
    found = {project.id: Balance(project, pc) for project, pc in served_chains(vendor)}
    rows = db.session.execute(
        select(Redemption.project_id, Redemption.status, func.sum(Redemption.amount), func.count())
        .where(Redemption.vendor_id == vendor.id, Redemption.status.in_((SETTLED, *IN_FLIGHT)))
        .group_by(Redemption.project_id, Redemption.status)
    ).all()
    for project_id, status, total, count in rows:
        balance = found.get(project_id)
        if balance is None:
            continue
        if status == SETTLED:
            balance.settled += int(total or 0)
            balance.count += count
        else:
            balance.pending += int(total or 0)
    return list(found.values())


def served_chains(vendor: Vendor) -> list[tuple[Project, ProjectChain]]:
    rows = db.session.execute(
        select(Project, ProjectChain)
        .join(VendorProject, VendorProject.project_id == Project.id)
        .join(ProjectChain, ProjectChain.project_id == Project.id)
        .where(VendorProject.vendor_id == vendor.id, ProjectChain.status == DEPLOYED)
        .order_by(Project.name, Project.id)
    ).all()
    return [(project, pc) for project, pc in rows]


def seconds_left(redemption: Redemption) -> int:
    return max(int((redemption.code_expires_at - utcnow()).total_seconds()), 0)


def person_ref(redemption: Redemption) -> str:
    return db.session.scalar(
        select(Beneficiary.ref).where(Beneficiary.id == redemption.beneficiary_id)
    )


def project_of(redemption: Redemption) -> Project:
    return db.session.get(Project, redemption.project_id)


def tx_hash_of(redemption: Redemption) -> str | None:
    if redemption.chain_tx_id is None:
        return None
    return db.session.scalar(select(ChainTx.tx_hash).where(ChainTx.id == redemption.chain_tx_id))

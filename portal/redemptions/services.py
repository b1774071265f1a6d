"""Redemptions up to the chain: find the payer, send the code, accept it once and reserve
the amount, resend, cancel, and stop a suspended vendor's redemptions.

Never twice: accepting a code is one conditional UPDATE of the redemption (it must still wait for
this very code, within its tries and its time), and in the same transaction one conditional
UPDATE of the entitlement reserves the amount (only if that much is left). Only then is the
transfer signed, so a code entered fifty times at once yields one reservation and one transfer.
The chain step (``portal.redemptions.transfer``) signs the redeem call in that same transaction
or in the transfer job it records, and the contract itself refuses a redemption id it has seen.

Nothing before an accepted code tells the vendor who pays or what is left: a typed number that
is nobody's here becomes a decoy (a row with no beneficiary and no code, no SMS), and an amount
above what is left gets no code (the beneficiary's SMS says what is left); both look like any
charge on the vendor's pages. Codes sent and wrong codes are limited per payer (a keyed hash of
the phone number, by card or typed), charges per vendor, in the database (``portal.quotas``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import select, update

from portal.audit import services as audit
from portal.beneficiaries import normalize
from portal.beneficiaries.models import ACTIVE as PERSON_ACTIVE
from portal.beneficiaries.models import Beneficiary, BeneficiaryPII, ProjectBeneficiary
from portal.cards import services as cards
from portal.chain import contracts, guardian
from portal.chain.models import DEPLOYED, ProjectChain
from portal.comms import services as comms
from portal.crypto import blind_index
from portal.disbursements.models import Entitlement
from portal.errors import Conflict, Forbidden, NotFound, ValidationFailed
from portal.extensions import db
from portal.jobs import dispatch
from portal.jobs.kinds import REDEMPTION_TRANSFER
from portal.ledger import entitlements
from portal.ledger.display import money  # SMS and audit text name the currency
from portal.messages import notices
from portal.messages.kinds import PAYMENT_CODE, PAYMENT_SHORT
from portal.money import amounts
from portal.projects.models import ACTIVE as PROJECT_ACTIVE
from portal.projects.models import Project
from portal.quotas import services as quotas
from portal.redemptions import codes, payer_names
from portal.redemptions.live import announce
from portal.redemptions.models import (
    ACCEPTED,
    AWAITING,
    BY_CARD,
    BY_PHONE,
    CANCELLED,
    FAILED,
    Redemption,
)
from portal.settings.services import default_country
from portal.timeutil import utcnow
from portal.vendors.models import APPROVED, Vendor, VendorProject

REF = "redemption"  # ChainTx.ref_type
CODE_PURPOSE = "redemption"  # bound into the code's hash
SMS_PURPOSE = "redemption.code"
SHORT = "short"  # the code was right but the entitlement no longer covers the amount
NOTICE_PURPOSE = "redemption.short"  # the SMS that says the amount asked is more than is left

# Limits keyed on the thing attacked, across every session of every vendor (portal/quotas).
CHARGES = quotas.define(
    "vendor-charge",
    "VENDOR_CHARGE_LIMITS",
    _l("You have started many charges in a short time. You can start another {when}."),
)
CODES_SENT = quotas.define(
    "payer-code",
    "BENEFICIARY_CODE_LIMITS",
    _l(
        "Several codes were sent for this person or number a moment ago. "
        "A new code can be sent {when}."
    ),
)
WRONG_GUESSES = quotas.define(
    "payer-wrong",
    "BENEFICIARY_GUESS_LIMITS",
    _l("Too many wrong codes were typed for this person or number. Try again {when}."),
)


@dataclass(frozen=True)
class Confirmation:
    outcome: str  # codes.ACCEPTED / WRONG / LOCKED / EXPIRED / USED, or SHORT
    redemption: Redemption
    tries_left: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome == codes.ACCEPTED


def record(redemption: Redemption, action: str, summary: str, actor: str | None = None):
    audit.record(
        action,
        summary,
        target=redemption,
        project_id=redemption.project_id,
        data={"vendor_id": redemption.vendor_id, "amount": redemption.amount},
        actor_id=None,
        actor_label=actor or "system",
    )


def reload(redemption_id: int) -> Redemption:
    return db.session.get(Redemption, redemption_id, populate_existing=True)


def move(redemption_id: int, from_statuses: tuple[str, ...], to_status: str, **values) -> bool:
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
    raise ValidationFailed({"project_id": _("Choose one of your projects.")})


def entitlement(project_id: int, beneficiary_id: int) -> Entitlement | None:
    return db.session.scalar(
        select(Entitlement).where(
            Entitlement.project_id == project_id, Entitlement.beneficiary_id == beneficiary_id
        )
    )


@dataclass(frozen=True)
class Payer:
    """Who a charge is for. ``person`` is None when a typed number is nobody's who can pay here:
    the charge then goes on as a decoy that no code can confirm, so the vendor learns nothing.
    ``subject`` keys the per-person limits: a keyed hash of the phone number, the same for a
    beneficiary found by card or by number, and for a number that is nobody's."""

    person: Beneficiary | None
    method: str
    subject: str


def phone_subject(e164: str) -> str:
    return quotas.subject("phone", e164)


def _member(project: Project, person: Beneficiary | None) -> bool:
    return (
        person is not None
        and person.status == PERSON_ACTIVE
        and db.session.scalar(
            select(ProjectBeneficiary.id).where(
                ProjectBeneficiary.project_id == project.id,
                ProjectBeneficiary.beneficiary_id == person.id,
            )
        )
        is not None
    )


def find_payer(project: Project, *, card: str = "", phone: str = "") -> Payer:
    """The payer a scanned or typed card, or a typed phone number, points to in this project.

    A card is a credential the vendor holds in hand: an unknown one is a field error. A typed
    number is not: whether it is a beneficiary's is not told before the code is accepted.
    """
    if (card or "").strip():
        person = cards.resolve(card)
        if not _member(project, person):
            raise ValidationFailed(
                {"card": _("No working card of this project matches this code.")}
            )
        return Payer(person, BY_CARD, phone_subject(person.pii.phone))
    if (phone or "").strip():
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
        return Payer(person if _member(project, person) else None, BY_PHONE, phone_subject(e164))
    raise ValidationFailed({"card": _("Scan the card or type its code, or enter a phone number.")})


def masked_name(person: Beneficiary) -> str:
    """The holder's name as a vendor may see it ("Gita M."; ``payer_names``), or a dash."""
    return payer_names.mask(person.pii.name) or "—"


# --- starting, confirming, resending, cancelling --------------------------------------------


def _code_text(code: str, redemption: Redemption, vendor: Vendor, person: Beneficiary) -> str:
    minutes = max(int(codes.ttl().total_seconds() // 60), 1)
    values = {"code": code, "amount": redemption.amount, "shop": vendor.name[:40]}
    return _in_their_language(PAYMENT_CODE, person, redemption, {**values, "minutes": minutes})


def _short_text(redemption: Redemption, vendor: Vendor, person: Beneficiary, left: int) -> str:
    values = {"amount": redemption.amount, "shop": vendor.name[:40], "left": left}
    return _in_their_language(PAYMENT_SHORT, person, redemption, values)


def _in_their_language(kind, person: Beneficiary, redemption: Redemption, values: dict) -> str:
    project = db.session.get(Project, redemption.project_id)
    pc = db.session.get(ProjectChain, redemption.project_id)
    return notices.render(
        kind.name,
        person.language,
        values,
        decimals=pc.decimals if pc is not None else 0,
        currency=project.currency,
    )


def _remaining(redemption: Redemption) -> int:
    held = entitlement(redemption.project_id, redemption.beneficiary_id)
    return held.remaining if held else 0


def _issue_code(redemption: Redemption, vendor: Vendor, pc: ProjectChain, *, renew: bool) -> bool:
    """Give the redemption a code and send it, if the beneficiary can pay the amount.

    Otherwise the row gets no code (nothing can confirm it): a number that is nobody's gets no
    SMS, a beneficiary with too little left gets an SMS saying so, and the vendor's page is the
    same in every case. False when ``renew`` found the row no longer renewable.
    """
    code = codes.new_code()
    payable = redemption.beneficiary_id is not None and _remaining(redemption) >= redemption.amount
    code_digest = (
        codes.digest(CODE_PURPOSE, redemption.id, redemption.amount, code=code) if payable else None
    )
    if renew:
        if not codes.renew(Redemption, redemption.id, code_digest):
            return False
        redemption = reload(redemption.id)
    else:
        redemption.code_hash = code_digest
    if redemption.beneficiary_id is None:
        return True
    person = db.session.get(Beneficiary, redemption.beneficiary_id)
    if payable:
        body, purpose = _code_text(code, redemption, vendor, person), SMS_PURPOSE
    else:
        left = _remaining(redemption)
        body, purpose = _short_text(redemption, vendor, person, left), NOTICE_PURPOSE
    comms.send_sms(
        person.pii.phone,
        body,
        purpose,
        expires_at=redemption.code_expires_at,
        project_id=redemption.project_id,
    )
    return True


def start(
    vendor: Vendor,
    project: Project,
    pc: ProjectChain,
    person: Beneficiary | None,
    amount: int,
    method: str,
    *,
    subject: str | None = None,
) -> Redemption:
    """Start a charge and send the payer a code bound to this redemption and amount.

    Nothing here tells the vendor who the payer is or what they have left: a number that is
    nobody's (``person`` None) and an amount above what is left both go on to the code page,
    where no code can confirm them. Limits per vendor and per payer are checked first.
    """
    if vendor.status != APPROVED:
        raise Forbidden(_("Only an approved vendor can charge."))
    guardian.ensure_moving(project.id)
    amounts.check(amount, pc.decimals)  # never a code for nothing, whoever calls
    if subject is None:
        subject = phone_subject(person.pii.phone)
    quotas.take(CHARGES, f"vendor:{vendor.id}")
    quotas.take(CODES_SENT, subject)
    # A vendor who starts again for the same payer does not leave a second live code behind.
    _supersede(vendor.id, subject)
    now = utcnow()
    redemption = Redemption(
        project_id=project.id,
        vendor_id=vendor.id,
        beneficiary_id=person.id if person is not None else None,
        subject=subject,
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
    _issue_code(redemption, vendor, pc, renew=False)
    db.session.flush()
    who = person.ref if person is not None else "a number of nobody in this project"
    record(
        redemption,
        "redemption.started",
        f"Redemption {redemption.id}: vendor {vendor.id} charges {who} "
        f"{money(amount, pc)} ({method})"
        + ("; code sent" if redemption.code_hash else "; no code (cannot pay)"),
        f"vendor:{vendor.id}",
    )
    announce(redemption)
    return redemption


def _supersede(vendor_id: int, subject: str) -> None:
    ids = db.session.scalars(
        select(Redemption.id).where(
            Redemption.vendor_id == vendor_id,
            Redemption.subject == subject,
            Redemption.status == AWAITING,
        )
    ).all()
    for redemption_id in ids:
        if move(
            redemption_id,
            (AWAITING,),
            CANCELLED,
            code_hash=None,
            error="Replaced by a new charge.",
            finished_at=utcnow(),
        ):
            announce(reload(redemption_id))


def get_for_vendor(vendor: Vendor, redemption_id: int) -> Redemption:
    redemption = db.session.get(Redemption, redemption_id)
    if redemption is None or redemption.vendor_id != vendor.id:
        raise NotFound(_("No such payment."))
    return redemption


def expire_if_due(redemption: Redemption) -> Redemption:
    due = redemption.status == AWAITING and redemption.code_expires_at <= utcnow()
    if due and codes.expire(Redemption, redemption.id):
        redemption = reload(redemption.id)
        announce(redemption)
    return redemption


def expire_due(limit: int = 500) -> int:
    """Expire redemptions whose code ran out unused (the sweeper's job: pages only read)."""
    ids = db.session.scalars(
        select(Redemption.id)
        .where(Redemption.status == AWAITING, Redemption.code_expires_at <= utcnow())
        .order_by(Redemption.id)
        .limit(limit)
    ).all()
    expired = [rid for rid in ids if codes.expire(Redemption, rid)]
    for redemption_id in expired:
        announce(reload(redemption_id))
    return len(expired)


def _reserve(redemption: Redemption) -> bool:
    return entitlements.reserve(redemption.project_id, redemption.beneficiary_id, redemption.amount)


def give_back(redemption: Redemption) -> None:
    entitlements.release(redemption.project_id, redemption.beneficiary_id, redemption.amount)


def confirm(vendor: Vendor, redemption_id: int, typed: str) -> Confirmation:
    """The vendor types the beneficiary's code. At most one caller ever gets ACCEPTED."""
    redemption = get_for_vendor(vendor, redemption_id)
    # A charge started before a pause is not taken after it: the code stays unused.
    guardian.ensure_moving(redemption.project_id)
    code = codes.clean(typed)
    if code is None:
        raise ValidationFailed({"code": _("Enter the 6 digits of the code.")})
    subject = subject_of(redemption)
    waiting = redemption.status == AWAITING and redemption.code_expires_at > utcnow()
    if waiting:
        # Before the code is compared: past the limit, even a right guess is not tried.
        quotas.check(WRONG_GUESSES, subject)
    code_digest = codes.digest(CODE_PURPOSE, redemption.id, redemption.amount, code=code)
    if not codes.accept(Redemption, redemption.id, code_digest, ACCEPTED, confirmed_at=utcnow()):
        check = codes.refuse(Redemption, redemption.id)
        if check.counted:
            quotas.hit(WRONG_GUESSES, subject)
        redemption = reload(redemption.id)
        if check.outcome in (codes.LOCKED, codes.EXPIRED):
            announce(redemption)
        return Confirmation(check.outcome, redemption, check.tries_left)
    if not _reserve(redemption):
        move(
            redemption.id,
            (ACCEPTED,),
            FAILED,
            error="Not enough entitlement left when the code was entered.",
            finished_at=utcnow(),
        )
        redemption = reload(redemption.id)
        record(redemption, "redemption.failed", f"Redemption {redemption.id}: not enough left")
        announce(redemption)
        return Confirmation(SHORT, redemption)
    # Imported here: the chain step imports this module for its moves and records.
    from portal.redemptions import transfer

    values = {"remaining_after": _remaining(redemption)}
    if transfer.sign_in_request(redemption, vendor):
        step = "transfer signed, sent once this commits"
    else:
        job = dispatch.enqueue(
            REDEMPTION_TRANSFER.name,
            {"redemption_id": redemption.id},
            project_id=redemption.project_id,
        )
        values["job_id"] = job.id
        step = f"transfer job {job.id}"
    db.session.execute(
        update(Redemption)
        .where(Redemption.id == redemption.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    redemption = reload(redemption.id)
    record(
        redemption,
        "redemption.accepted",
        f"Redemption {redemption.id}: code accepted, amount reserved, {step}",
        f"vendor:{vendor.id}",
    )
    announce(redemption)
    return Confirmation(codes.ACCEPTED, redemption)


def subject_of(redemption: Redemption) -> str:
    """The per-payer limit key; the sweeper blanks it on old rows, which wait for no code."""
    if redemption.subject:
        return redemption.subject
    person = _person_of(redemption)
    return phone_subject(person.pii.phone) if person else f"redemption:{redemption.id}"


def _person_of(redemption: Redemption) -> Beneficiary | None:
    if redemption.beneficiary_id is None:
        return None
    return db.session.get(Beneficiary, redemption.beneficiary_id)


def resend(vendor: Vendor, redemption_id: int) -> Redemption:
    """A new code (the old one stops working), within the resend limit and gap and the payer's
    and vendor's limits."""
    redemption = expire_if_due(get_for_vendor(vendor, redemption_id))
    wait = codes.resend_wait(redemption)
    if wait < 0:
        raise Conflict(_("No more codes can be sent for this payment. Start a new charge."))
    if wait > 0:
        raise Conflict(
            ngettext(
                "Wait %(num)s second before sending another code.",
                "Wait %(num)s seconds before sending another code.",
                wait,
            )
        )
    quotas.take(CHARGES, f"vendor:{vendor.id}")
    quotas.take(CODES_SENT, subject_of(redemption))
    pc = db.session.get(ProjectChain, redemption.project_id)
    if not _issue_code(redemption, vendor, pc, renew=True):
        raise Conflict(_("A code was sent a moment ago. Wait a little before asking again."))
    redemption = reload(redemption.id)
    announce(redemption)
    return redemption


def cancel(vendor: Vendor, redemption_id: int) -> bool:
    redemption = get_for_vendor(vendor, redemption_id)
    if not move(
        redemption.id,
        (AWAITING,),
        CANCELLED,
        code_hash=None,
        error="Cancelled by the vendor. Nothing was taken.",
        finished_at=utcnow(),
    ):
        return False
    redemption = reload(redemption.id)
    record(
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
        if move(redemption_id, (AWAITING,), CANCELLED, **values):
            pass
        elif move(redemption_id, (ACCEPTED,), CANCELLED, **values):
            give_back(reload(redemption_id))
        else:
            continue  # already on its way to the chain, or finished
        stopped += 1
        redemption = reload(redemption_id)
        record(redemption, "redemption.cancelled", f"Redemption {redemption_id} stopped: {reason}")
        announce(redemption)
    return stopped

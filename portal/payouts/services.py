"""Payouts: made for a vendor by a method, moved pending → sent → paid / failed.

``request_payout`` is the one entry point (a settlement calls it with its id as the source).
Every status change is one conditional UPDATE (``portal.transitions``): a callback and a poll
arriving together, or two workers, move a payout once, and only the one that moved it announces
the change. A failed payout's ``payout_changed`` event carries ``source_type``/``source_id`` so
that the settlement can give the balance back.
"""

from __future__ import annotations

import uuid

from flask_babel import gettext as _
from sqlalchemy import Select, select

from portal import events
from portal.chain.models import ProjectChain
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.jobs.dispatch import enqueue
from portal.jobs.kinds import PAYOUT_SEND
from portal.money import amounts
from portal.payouts import live, methods, references
from portal.payouts.models import (
    FAILED,
    KINDS,
    MOMO,
    PAID,
    PENDING,
    SENT,
    Payout,
)
from portal.projects import services as projects
from portal.projects.models import Project
from portal.timeutil import utcnow
from portal.transitions import change, insert_or_skip
from portal.vendors.models import Vendor, VendorProject


def visible(user) -> Select:
    return projects.scope(select(Payout), Payout.project_id, user)


def get_visible(user, payout_id: int) -> Payout:
    payout = db.session.scalar(visible(user).where(Payout.id == payout_id))
    if payout is None:
        raise NotFound(_("No such payout."))
    return payout


def decimals_of(project_id: int) -> int | None:
    return db.session.scalar(
        select(ProjectChain.decimals).where(ProjectChain.project_id == project_id)
    )


def request_payout(
    project_id: int,
    vendor_id: int,
    amount: int,
    *,
    method_id: int | None = None,
    narrative: str = "",
    source_type: str = "manual",
    source_id: int | None = None,
    reference: str | None = None,
    user_id: int | None = None,
) -> Payout:
    """Pay ``vendor_id`` ``amount`` base units of the project's token by ``method_id`` (or the
    vendor's default method), with ``narrative`` on the payee's statement.

    Idempotent per source: asking again for the same ``(source_type, source_id)`` returns the
    payout made the first time. ``reference`` (a UUID) is the caller's own, when it has one
    to reuse; otherwise one is chosen. It is the X-Reference-Id of a mobile-money transfer and
    the line reference of a bank file, and what statements are matched on. A mobile-money
    payout is sent by a job after commit; a bank payout waits to be put in a batch file.
    """
    if reference is not None:
        try:
            reference = str(uuid.UUID(reference))
        except (ValueError, TypeError, AttributeError):
            raise DomainError(_("A payout reference is a UUID.")) from None
    project = db.session.get(Project, project_id)
    if project is None:
        raise NotFound(_("No such project."))
    serves = db.session.scalar(
        select(VendorProject.id).where(
            VendorProject.vendor_id == vendor_id, VendorProject.project_id == project_id
        )
    )
    if db.session.get(Vendor, vendor_id) is None or serves is None:
        raise DomainError(_("This vendor does not serve this project."))
    decimals = decimals_of(project_id)
    if decimals is None:
        raise DomainError(
            _("This project's payments are not set up yet, so it has nothing to pay out.")
        )
    amounts.check(amount, decimals)
    method = methods.get(vendor_id, method_id) if method_id else methods.default_of(vendor_id)
    if method is None:
        raise DomainError(_("This vendor has no payout method yet; add one on their page."))
    narrative = " ".join(narrative.split())[:140] or f"Payout from {project.name}"[:140]
    values = {
        "project_id": project_id,
        "vendor_id": vendor_id,
        "method_id": method.id,
        "kind": method.kind,
        "reference": reference or str(uuid.uuid4()),
        "amount": amount,
        "decimals": decimals,
        "currency": project.currency,
        "narrative": narrative,
        "payee_name": method.account_name,
        "payee_account": method.account_number,
        "bank_code": method.bank_code,
        "status": PENDING,
        "source_type": source_type,
        "source_id": source_id,
        "created_by_id": user_id,
        "created_at": utcnow(),
        "failure_reason": "",
        "books_reason": "",
        "send_attempts": 0,
    }
    # Encrypted columns are encrypted by the ORM type, so the row goes through the model's
    # table with the type's bind processing.
    for _try in range(3):
        values["line_reference"] = references.new()
        new_id = insert_or_skip(Payout, values, returning=Payout.id)
        if new_id is not None:
            break
        existing = db.session.scalar(
            select(Payout).where(Payout.source_type == source_type, Payout.source_id == source_id)
        )
        if existing is not None:
            return existing
        # Not the source's: the random short reference met another payout's. Draw again.
    else:
        raise DomainError(_("No free payout reference was found; try again."))
    payout = db.session.get(Payout, new_id)
    events.payout_changed.send(
        payout,
        action="payout.requested",
        summary=f"Payout {payout.id} of {amounts.format(amount, decimals)} {payout.currency} "
        f"to vendor {vendor_id} by {KINDS[payout.kind].lower()} requested",
        project_id=project_id,
        data=_data(payout),
    )
    if payout.kind == MOMO:
        enqueue(PAYOUT_SEND.name, {"payout_id": payout.id}, project_id=project_id)
    return payout


def _data(payout: Payout) -> dict:
    return {
        "payout_id": payout.id,
        "status": payout.status,
        "amount": payout.amount,
        "reference": payout.reference,
        "source": f"{payout.source_type}:{payout.source_id or ''}",
    }


def booked(payout_id: int, why: str) -> None:
    """Announce that a payout already paid is now paid for the books too (a statement line or
    an override came after the provider's confirmation): the settlement becomes reconciled."""
    payout = db.session.get(Payout, payout_id)
    db.session.refresh(payout)
    live.emit(payout)
    events.payout_changed.send(
        payout,
        action="payout.booked",
        summary=f"Payout {payout.id} paid for the books: {why}",
        project_id=payout.project_id,
        data={**_data(payout), "why": why, "books": payout.books},
    )


def move(payout_id: int, from_states, to_state: str, *, why: str, reason: str = "", **values):
    """Move the payout if it is in one of ``from_states``; True when this call moved it (and
    announced it), False when another writer had already."""
    now = utcnow()
    extra = dict(values)
    if to_state == SENT:
        extra.setdefault("sent_at", now)
    if to_state in (PAID, FAILED):
        extra.setdefault("finished_at", now)
    if to_state == FAILED:
        extra["failure_reason"] = (reason or "failed")[:255]
    if not change(Payout, payout_id, from_states, to_state, **extra):
        return False
    payout = db.session.get(Payout, payout_id)
    db.session.refresh(payout)
    live.emit(payout)
    events.payout_changed.send(
        payout,
        action=f"payout.{to_state}",
        summary=f"Payout {payout.id} {to_state}: {why}"
        + (f" ({payout.failure_reason})" if to_state == FAILED else ""),
        project_id=payout.project_id,
        data={**_data(payout), "why": why},
    )
    return True


def provider_said(payout_id: int, status: str, reason: str = "") -> bool:
    """A final status the provider's status query gave (never a callback's word alone)."""
    if status == "SUCCESSFUL":
        return move(payout_id, (PENDING, SENT), PAID, why="the provider's status is SUCCESSFUL")
    if status == "FAILED":
        return move(
            payout_id,
            (PENDING, SENT),
            FAILED,
            why="the provider's status is FAILED",
            reason=reason or "the provider gave no reason",
        )
    return False


def returned(payout_id: int, why: str) -> bool:
    """A statement says the money of a sent or paid payout did not arrive or came back (a bank
    line rejected or returned, a mobile-money transfer reversed): the payout failed after all.
    True when this call recorded it."""
    return move(payout_id, (SENT, PAID), FAILED, why=why, reason=f"Returned: {why}")


def family(source_type: str) -> str:
    """What a source is without its try number: "settlement.3" → "settlement"."""
    return (source_type or "").split(".", 1)[0]


def siblings(payout: Payout) -> list[Payout]:
    """The other payouts made for the same thing (earlier and later tries of one settlement),
    oldest first; none for a payout made by hand."""
    if payout.source_id is None or payout.source_type == "manual":
        return []
    base = family(payout.source_type)
    return [
        p
        for p in db.session.scalars(
            select(Payout)
            .where(Payout.source_id == payout.source_id, Payout.id != payout.id)
            .order_by(Payout.id)
        )
        if family(p.source_type) == base
    ]


def paid_after_failure(payout_id: int, why: str) -> bool:
    """The provider's status query says a payout recorded failed was paid after all.

    The same value may be on its way again in a later try: a try that has not left the portal
    (a mobile-money payout not sent yet, a bank payout in no batch) is stopped first, under its
    row lock, so that the sending job cannot send it meanwhile. A try already sent cannot be
    stopped: the source hears both as paid and says so (the settlement records it paid twice).
    True when this call recorded the payout paid."""
    payout = db.session.get(Payout, payout_id)
    if payout is None:
        return False
    for other in siblings(payout):
        locked = db.session.scalar(select(Payout).where(Payout.id == other.id).with_for_update())
        db.session.refresh(locked)
        if locked.status == PENDING and (locked.kind == MOMO or locked.batch_id is None):
            move(
                locked.id,
                (PENDING,),
                FAILED,
                why=f"not sent: payout {payout.id} of the same amount was paid after all",
                reason="Stopped: an earlier payment of the same amount went through.",
            )
    return move(payout_id, (FAILED,), PAID, why=why)


def status_counts(user, project_id: int | None = None) -> dict[str, int]:
    from sqlalchemy import func

    query = visible(user).with_only_columns(Payout.status, func.count()).group_by(Payout.status)
    if project_id:
        query = query.where(Payout.project_id == project_id)
    return dict(db.session.execute(query).all())

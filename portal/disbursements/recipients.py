"""Who a disbursement went to and what each person got: a page of its items with their status,
and the whole list to CSV or XLSX.

A person's status is their batch's: confirmed on chain is "allocated", refused is "failed",
anything before that is "pending" ("not started" while the disbursement is a draft). Names only
for users who may read personal data (and reading them is audited); every exported cell goes
through the beneficiary export's formula escaping.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from portal import events
from portal.beneficiaries import reads
from portal.beneficiaries.exports import FORMATS, csv_stream, escape_cell, xlsx_stream
from portal.beneficiaries.models import Beneficiary
from portal.disbursements.models import (
    B_CONFIRMED,
    B_FAILED,
    DRAFT,
    Disbursement,
    DisbursementBatch,
    DisbursementItem,
)
from portal.extensions import db
from portal.money import amounts
from portal.timeutil import utcnow

PII = "beneficiary.pii.read"
PER_PAGE = 50
BATCH = 500
ALLOCATED, PENDING, FAILED, NOT_STARTED = "allocated", "pending", "failed", "not started"
STATUSES = (ALLOCATED, PENDING, FAILED)

__all__ = ["FORMATS", "STATUSES", "counts", "export_chunks", "filename", "page", "record_export"]


@dataclass(frozen=True)
class Recipient:
    beneficiary_id: int
    ref: str
    name: str | None
    amount: int
    status: str
    batch: int


def _query(disbursement: Disbursement, status: str | None):
    # In the order of the (disbursement, person) unique index: a page is an index range, not a
    # sort of every item of the disbursement.
    query = (
        select(
            DisbursementItem.beneficiary_id,
            Beneficiary.ref,
            DisbursementItem.amount,
            DisbursementBatch.status,
            DisbursementBatch.number,
        )
        .join(DisbursementBatch, DisbursementBatch.id == DisbursementItem.batch_id)
        .join(Beneficiary, Beneficiary.id == DisbursementItem.beneficiary_id)
        .where(DisbursementItem.disbursement_id == disbursement.id)
        .order_by(DisbursementItem.beneficiary_id)
    )
    if status and disbursement.status != DRAFT:
        wanted = {ALLOCATED: (B_CONFIRMED,), FAILED: (B_FAILED,)}.get(status)
        query = (
            query.where(DisbursementBatch.status.in_(wanted))
            if wanted
            else query.where(DisbursementBatch.status.not_in((B_CONFIRMED, B_FAILED)))
        )
    return query


def _label(disbursement: Disbursement, batch_status: str) -> str:
    if disbursement.status == DRAFT:
        return NOT_STARTED
    return {B_CONFIRMED: ALLOCATED, B_FAILED: FAILED}.get(batch_status, PENDING)


def _names(ids: set[int]) -> tuple[dict[int, str], list[Beneficiary]]:
    people = db.session.scalars(
        select(Beneficiary).where(Beneficiary.id.in_(ids)).options(selectinload(Beneficiary.pii))
    ).all()
    return {p.id: (p.pii.name if p.pii else "") for p in people}, people


def counts(disbursement: Disbursement) -> dict[str, int]:
    """People per status, from the batches (a few rows however many people)."""
    found = dict.fromkeys(STATUSES, 0)
    rows = db.session.execute(
        select(DisbursementBatch.status, func.sum(DisbursementBatch.size))
        .where(DisbursementBatch.disbursement_id == disbursement.id)
        .group_by(DisbursementBatch.status)
    )
    for status, size in rows:
        label = _label(disbursement, status)
        found[label] = found.get(label, 0) + int(size or 0)
    return found


def page(disbursement: Disbursement, user, number: int, status: str | None = None) -> dict:
    """One page of recipients (``PER_PAGE``), keyed by item order; ``has_next`` by peeking."""
    number = max(number, 1)
    rows = db.session.execute(
        _query(disbursement, status).limit(PER_PAGE + 1).offset((number - 1) * PER_PAGE)
    ).all()
    has_next = len(rows) > PER_PAGE
    rows = rows[:PER_PAGE]
    names: dict[int, str] = {}
    if user.can(PII) and rows:
        names, people = _names({r[0] for r in rows})
        reads.record(people, "disbursement recipients", project_id=disbursement.project_id)
    items = [
        Recipient(bid, ref, names.get(bid) if names else None, amount, _label(disbursement, s), n)
        for bid, ref, amount, s, n in rows
    ]
    return {"rows": items, "page": number, "has_next": has_next, "with_names": bool(names)}


def _cells(disbursement: Disbursement, with_pii: bool, decimals: int) -> Iterator[list[str]]:
    statement = _query(disbursement, None).execution_options(yield_per=BATCH)
    for chunk in db.session.execute(statement).partitions():
        names = _names({r[0] for r in chunk})[0] if with_pii else {}
        for bid, ref, amount, status, number in chunk:
            values = [ref] + ([names.get(bid, "")] if with_pii else [])
            values += [
                amounts.plain(amount, decimals),
                _label(disbursement, status),
                str(number),
            ]
            yield [escape_cell(v) for v in values]


def export_chunks(
    disbursement: Disbursement, fmt: str, *, with_pii: bool, decimals: int, currency: str
) -> Iterator[bytes]:
    headers = ["Beneficiary"] + (["Name"] if with_pii else [])
    headers += [f"Amount ({currency})", "Status", "Batch"]
    stream = csv_stream if fmt == "csv" else xlsx_stream
    return stream(headers, _cells(disbursement, with_pii, decimals))


def record_export(disbursement: Disbursement, fmt: str, with_pii: bool) -> None:
    kind = "with personal data" if with_pii else "without personal data"
    events.money_trail_exported.send(
        "disbursement",
        action="disbursement.recipients_exported",
        summary=(
            f"{disbursement.beneficiaries} recipients of disbursement {disbursement.id} "
            f"exported to {fmt.upper()} {kind}"
        ),
        project_id=disbursement.project_id,
        data={"format": fmt, "rows": disbursement.beneficiaries, "pii": with_pii},
    )


def filename(disbursement: Disbursement, fmt: str) -> str:
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return f"disbursement{disbursement.id}-recipients-{stamp}.{fmt}"

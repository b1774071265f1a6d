"""A project's redemptions as filtered on the list, to CSV or XLSX, streamed in constant memory.

Names and phone numbers only for users who may read personal data; every cell escaped against
formula injection (``portal.beneficiaries.exports.escape_cell``). Each export is audited with
its filters and row count, never the beneficiary searched for (a reference is enough to find a
person).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal import events
from portal.beneficiaries.exports import FORMATS, csv_stream, escape_cell, xlsx_stream
from portal.beneficiaries.models import Beneficiary
from portal.chain.models import ChainTx, ProjectChain
from portal.extensions import db
from portal.ledger import display, redemption_list
from portal.timeutil import utcnow
from portal.vendors.models import Vendor

PII = "beneficiary.pii.read"
BATCH = 500
HEADERS = ["Date (UTC)", "Payment", "Vendor", "Beneficiary"]
PII_HEADERS = ["Name", "Phone"]
TAIL_HEADERS = ["Amount", "Currency", "Status", "Settled (UTC)", "Transaction"]

__all__ = ["FORMATS", "Export", "chunks", "filename", "prepare", "record"]


@dataclass(frozen=True)
class Export:
    filters: redemption_list.Filters
    with_pii: bool

    @property
    def headers(self) -> list[str]:
        return HEADERS + (PII_HEADERS if self.with_pii else []) + TAIL_HEADERS


def prepare(user, filters: redemption_list.Filters) -> Export:
    return Export(filters, user.can(PII))


def record(export: Export, fmt: str, rows: int) -> None:
    f = export.filters
    kind = "with personal data" if export.with_pii else "without personal data"
    events.money_trail_exported.send(
        "redemptions",
        action="redemptions.exported",
        summary=f"{rows} redemptions of project {f.project_id} exported to {fmt.upper()} {kind}",
        project_id=f.project_id,
        data={
            "format": fmt,
            "rows": rows,
            "pii": export.with_pii,
            "filters": {
                "vendor_id": f.vendor_id,
                "beneficiary": bool(f.beneficiary),
                "from": f.start.isoformat() if f.start else None,
                "to": f.end.isoformat() if f.end else None,
                "status": f.status or None,
            },
        },
    )


def _cells(export: Export) -> Iterator[list[str]]:
    project_id = export.filters.project_id
    pc = db.session.get(ProjectChain, project_id)
    symbol = display.currency(pc)
    vendors: dict[int, str] = {}
    statement = redemption_list.query(export.filters).execution_options(yield_per=BATCH)
    for batch in db.session.execute(statement).partitions():
        unknown = {r.vendor_id for r, _ in batch} - vendors.keys()
        if unknown:
            found = select(Vendor.id, Vendor.name).where(Vendor.id.in_(unknown))
            vendors.update(db.session.execute(found).all())
        tx_ids = {r.chain_tx_id for r, _ in batch if r.chain_tx_id}
        hashes = dict(
            db.session.execute(
                select(ChainTx.id, ChainTx.tx_hash).where(ChainTx.id.in_(tx_ids))
            ).all()
        )
        people = {}
        if export.with_pii:
            ids = {r.beneficiary_id for r, _ in batch if r.beneficiary_id}
            people = {
                p.id: p.pii
                for p in db.session.scalars(
                    select(Beneficiary)
                    .where(Beneficiary.id.in_(ids))
                    .options(selectinload(Beneficiary.pii))
                )
            }
        for redemption, ref in batch:
            values = [
                redemption.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                str(redemption.id),
                vendors.get(redemption.vendor_id, ""),
                ref or "",
            ]
            if export.with_pii:
                pii = people.get(redemption.beneficiary_id)
                values += [pii.name if pii else "", pii.phone if pii else ""]
            settled = redemption.settled_at
            values += [
                display.number(redemption.amount, pc),
                symbol,
                redemption.status,
                settled.strftime("%Y-%m-%d %H:%M:%S") if settled else "",
                hashes.get(redemption.chain_tx_id) or "",
            ]
            yield [escape_cell(v) for v in values]


def chunks(export: Export, fmt: str) -> Iterator[bytes]:
    stream = csv_stream if fmt == "csv" else xlsx_stream
    return stream(export.headers, _cells(export))


def filename(project_id: int, fmt: str) -> str:
    return f"redemptions-project{project_id}-{utcnow().strftime('%Y%m%d-%H%M')}.{fmt}"

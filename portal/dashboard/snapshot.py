"""Everything the dashboard shows, aggregated from the database in one small set of queries.

It runs on a Core ``Connection`` so that one function serves the page (the request's
connection), a socket subscribe, and the refresh after a commit, which cannot use the session
that has just committed. Amounts stay integers in base units; the display strings are made here
with the project's decimals, so the browser never does money arithmetic.

No personal data leaves this module: beneficiaries appear by their public reference only.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, distinct, func, select
from sqlalchemy.engine import Connection

from portal.beneficiaries.models import Beneficiary
from portal.chain.models import FAILED as TX_FAILED
from portal.chain.models import REVERTED, ChainTx, ProjectChain
from portal.disbursements.models import (
    B_PENDING,
    B_SENT,
    RUNNING,
    Disbursement,
    DisbursementBatch,
    Entitlement,
)
from portal.jobs.models import QUEUED, RETRYING, Job
from portal.jobs.models import RUNNING as JOB_RUNNING
from portal.money import amounts
from portal.redemptions.models import ACCEPTED, FAILED, SETTLED, SUBMITTED, Redemption
from portal.timeutil import utcnow
from portal.vendors.models import Vendor

CHART_MINUTES = 180
FEED_SIZE = 12
VENDOR_ROWS = 10
FAILED_TX_ROWS = 4
ERROR_CHARS = 160
# Redemptions that took money from an entitlement: the code was accepted, and the tokens are on
# their way to the vendor or arrived. A failed one gave its reservation back, so it is not counted.
COUNTED = (ACCEPTED, SUBMITTED, SETTLED)
FEED_STATUSES = (*COUNTED, FAILED)
ACTIVE_JOBS = (QUEUED, RETRYING, JOB_RUNNING)
# What the feed says about a redemption, in the words of the vendor's phone.
LABELS = {ACCEPTED: "pending", SUBMITTED: "pending", SETTLED: "confirmed", FAILED: "failed"}
# The queue of chain writes: one signer, so a backlog there delays every redemption.
CONTRACTS_QUEUE = "contracts"


def iso(value: datetime | None) -> str | None:
    """Naive UTC from the database, marked as UTC so the browser shows local time."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def build(conn: Connection, project_id: int, now: datetime | None = None) -> dict:
    # Snapshots from several processes can arrive out of order; the browser keeps the one read
    # last, which includes every commit that finished before it was read.
    version = time.time()
    now = now or utcnow()
    chain = conn.execute(
        select(ProjectChain.symbol, ProjectChain.decimals, ProjectChain.status).where(
            ProjectChain.project_id == project_id
        )
    ).first()
    decimals = chain.decimals if chain else 0

    def money(base: int) -> str:
        return amounts.format(base, decimals)

    totals = _totals(conn, project_id)
    chart = _chart(conn, project_id, now, totals["redeemed"])
    vendors = _vendors(conn, project_id, money)
    failed, failed_total = _failed_txs(conn, project_id)
    return {
        "project_id": project_id,
        "symbol": chain.symbol if chain else "",
        "decimals": decimals,
        "chain_status": chain.status if chain else "not_deployed",
        "totals": {key: value for key, value in totals.items() if key != "people"},
        "display": {key: money(totals[key]) for key in ("allocated", "redeemed", "remaining")},
        "people": {"allocated": totals["people"], "served": _served(conn, project_id)},
        "vendors": vendors[:VENDOR_ROWS],
        "vendor_count": len(vendors),
        "feed": _feed(conn, project_id, money),
        "failed_txs": failed,
        "failed_tx_total": failed_total,
        "queues": _queues(conn, project_id),
        "batches_in_flight": _batches_in_flight(conn, project_id),
        "chart": chart,
        "generated_at": iso(now),
        "version": version,
    }


def _totals(conn: Connection, project_id: int) -> dict:
    row = conn.execute(
        select(
            func.coalesce(func.sum(Entitlement.allocated), 0),
            func.coalesce(func.sum(Entitlement.redeemed), 0),
            func.coalesce(func.sum(Entitlement.revoked), 0),
            func.count(case((Entitlement.allocated > 0, 1))),
        ).where(Entitlement.project_id == project_id)
    ).one()
    allocated, redeemed, revoked, people = (int(v) for v in row)
    return {
        "allocated": allocated,
        "redeemed": redeemed,
        "revoked": revoked,
        "remaining": allocated - redeemed - revoked,
        "people": people,
    }


def _served(conn: Connection, project_id: int) -> int:
    return conn.scalar(
        select(func.count(distinct(Redemption.beneficiary_id))).where(
            Redemption.project_id == project_id, Redemption.status == SETTLED
        )
    )


def _vendors(conn: Connection, project_id: int, money) -> list[dict]:
    amount = func.sum(Redemption.amount)
    rows = conn.execute(
        select(
            Redemption.vendor_id,
            Vendor.name,
            func.count(),
            amount,
            func.count(case((Redemption.status != SETTLED, 1))),
            func.max(Redemption.confirmed_at),
        )
        .join(Vendor, Vendor.id == Redemption.vendor_id)
        .where(Redemption.project_id == project_id, Redemption.status.in_(COUNTED))
        .group_by(Redemption.vendor_id, Vendor.name)
        .order_by(amount.desc(), Vendor.name)
    ).all()
    return [
        {
            "id": vendor_id,
            "name": name,
            "count": count,
            "amount": int(total),
            "amount_display": money(int(total)),
            "pending": pending,
            "last_at": iso(last_at),
        }
        for vendor_id, name, count, total, pending, last_at in rows
    ]


def _feed(conn: Connection, project_id: int, money) -> list[dict]:
    rows = conn.execute(
        select(
            Redemption.id,
            Redemption.amount,
            Redemption.status,
            Redemption.confirmed_at,
            Beneficiary.ref,
            Vendor.name,
        )
        .join(Beneficiary, Beneficiary.id == Redemption.beneficiary_id)
        .join(Vendor, Vendor.id == Redemption.vendor_id)
        .where(
            Redemption.project_id == project_id,
            Redemption.status.in_(FEED_STATUSES),
            Redemption.confirmed_at.is_not(None),
        )
        .order_by(Redemption.confirmed_at.desc(), Redemption.id.desc())
        .limit(FEED_SIZE)
    ).all()
    return [
        {
            "id": rid,
            "amount": amount,
            "amount_display": money(amount),
            "status": status,
            "label": LABELS[status],
            "at": iso(at),
            "ref": ref,
            "vendor": vendor,
        }
        for rid, amount, status, at, ref, vendor in rows
    ]


def _failed_txs(conn: Connection, project_id: int) -> tuple[list[dict], int]:
    where = (ChainTx.project_id == project_id, ChainTx.status.in_((REVERTED, TX_FAILED)))
    rows = conn.execute(
        select(ChainTx.id, ChainTx.purpose, ChainTx.status, ChainTx.error, ChainTx.updated_at)
        .where(*where)
        .order_by(ChainTx.id.desc())
        .limit(FAILED_TX_ROWS)
    ).all()
    total = conn.scalar(select(func.count()).select_from(ChainTx).where(*where))
    return [
        {
            "id": tx_id,
            "purpose": purpose,
            "status": status,
            "error": (error or "")[:ERROR_CHARS],
            "at": iso(at),
        }
        for tx_id, purpose, status, error, at in rows
    ], total


def _queues(conn: Connection, project_id: int) -> list[dict]:
    """Waiting and running jobs of this project by queue; the contracts queue always first."""
    found: dict[str, dict] = {CONTRACTS_QUEUE: _empty_queue(CONTRACTS_QUEUE)}
    rows = conn.execute(
        select(Job.queue, Job.status, func.count())
        .where(Job.project_id == project_id, Job.status.in_(ACTIVE_JOBS))
        .group_by(Job.queue, Job.status)
    ).all()
    for queue, status, count in rows:
        found.setdefault(queue, _empty_queue(queue))[status] = count
    ordered = [found.pop(CONTRACTS_QUEUE)] + [found[name] for name in sorted(found)]
    for row in ordered:
        row["total"] = sum(row[s] for s in ACTIVE_JOBS)
    return ordered


def _empty_queue(name: str) -> dict:
    return {"queue": name, "highlight": name == CONTRACTS_QUEUE, **dict.fromkeys(ACTIVE_JOBS, 0)}


def _batches_in_flight(conn: Connection, project_id: int) -> int:
    return conn.scalar(
        select(func.count())
        .select_from(DisbursementBatch)
        .join(Disbursement, Disbursement.id == DisbursementBatch.disbursement_id)
        .where(
            Disbursement.project_id == project_id,
            Disbursement.status == RUNNING,
            DisbursementBatch.status.in_((B_PENDING, B_SENT)),
        )
    )


def _chart(conn: Connection, project_id: int, now: datetime, redeemed: int) -> dict:
    """Redeemed per minute over the last hours, and what was redeemed before, for a running total.

    Bucketed here rather than in SQL: minute truncation is spelled differently on SQLite and
    PostgreSQL, and the window holds at most a few hours of rows.
    """
    start = (now - timedelta(minutes=CHART_MINUTES - 1)).replace(second=0, microsecond=0)
    amounts = [0] * CHART_MINUTES
    counts = [0] * CHART_MINUTES
    rows = conn.execute(
        select(Redemption.confirmed_at, Redemption.amount).where(
            Redemption.project_id == project_id,
            Redemption.status.in_(COUNTED),
            Redemption.confirmed_at >= start,
        )
    )
    for at, amount in rows:
        slot = int((at - start).total_seconds() // 60)
        if 0 <= slot < CHART_MINUTES:
            amounts[slot] += amount
            counts[slot] += 1
    return {
        "start": int(start.replace(tzinfo=UTC).timestamp()),
        "step": 60,
        "amounts": amounts,
        "counts": counts,
        # The running total starts here, so the line ends on the "redeemed" figure.
        "base": max(redeemed - sum(amounts), 0),
    }

"""Everything the dashboard shows, read from the database in one small set of bounded queries.

Money and people figures come from the running totals the database keeps (``models``,
``triggers``), the feed and failed transactions from indexed "latest N" reads: no query here
grows with the number of redemptions.

It runs on a Core ``Connection`` so that one function serves the page (the request's
connection), a socket subscribe, and the refresh after a commit, which cannot use the session
that has just committed. Amounts stay integers in base units; the display strings are made here
with the project's decimals, so the browser never does money arithmetic.

No personal data leaves this module: beneficiaries appear by their public reference only.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from portal.beneficiaries.models import Beneficiary
from portal.chain.models import FAILED as TX_FAILED
from portal.chain.models import REVERTED, ChainTx, ProjectChain
from portal.dashboard.models import minute_totals, people_totals, vendor_totals
from portal.disbursements.models import (
    B_PENDING,
    B_SENT,
    RUNNING,
    Disbursement,
    DisbursementBatch,
)
from portal.jobs.kinds import QUEUE_LABELS
from portal.jobs.models import QUEUED, RETRYING, Job
from portal.jobs.models import RUNNING as JOB_RUNNING
from portal.money import amounts
from portal.projects.models import Project
from portal.redemptions.models import FAILED, IN_FLIGHT, SETTLED, Redemption
from portal.timeutil import utcnow
from portal.vendors.models import Vendor

CHART_MINUTES = 180
FEED_SIZE = 12
VENDOR_ROWS = 10
FAILED_TX_ROWS = 4
ERROR_CHARS = 160
# Redemptions that took money from an entitlement: the tokens arrived (settled: "redeemed", what
# the chain confirmed) or are on their way (in flight: "pending", shown apart). A failed one gave
# its reservation back, so it is not counted.
COUNTED = (*IN_FLIGHT, SETTLED)
FEED_STATUSES = (*COUNTED, FAILED)
ACTIVE_JOBS = (QUEUED, RETRYING, JOB_RUNNING)
# What the feed says about a redemption, in the words of the vendor's phone.
LABELS = {**dict.fromkeys(IN_FLIGHT, "pending"), SETTLED: "confirmed", FAILED: "failed"}
# The queue of chain writes: one signer, so a backlog there delays every redemption.
CONTRACTS_QUEUE = "contracts"


def iso(value: datetime | None) -> str | None:
    """Naive UTC from the database, marked as UTC so the browser shows local time."""
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def _shared_locale() -> str:
    if has_app_context():
        return current_app.config.get("AMOUNT_LOCALE") or "en"
    return "en"


def build(conn: Connection, project_id: int, now: datetime | None = None) -> dict:
    # Snapshots from several processes can arrive out of order; the browser keeps the one read
    # last, which includes every commit that finished before it was read.
    version = time.time()
    now = now or utcnow()
    head = _head(conn, project_id)
    decimals = head["decimals"] or 0

    # One snapshot serves every screen, whatever the language of the request that built it:
    # written the portal's way, and each page writes it again in its own (``display``).
    locale = _shared_locale()

    def money(base: int) -> str:
        return amounts.format(base, decimals, locale)

    people = head
    vendors = _vendors(conn, project_id, money)
    settled = sum(v["amount"] for v in vendors)
    pending = {
        "count": sum(v["pending"] for v in vendors),
        "amount": sum(v["pending_amount"] for v in vendors),
    }
    totals = {
        "allocated": people["allocated"],
        "redeemed": settled,
        "pending": pending["amount"],
        "revoked": people["revoked"],
        # What people can still spend: a pending payment has already taken its share.
        "remaining": people["allocated"] - people["reserved"] - people["revoked"],
    }
    return {
        "project_id": project_id,
        # The unit on the page is the project's currency; the token is an on-chain detail.
        "currency": head["currency"] or "",
        "decimals": decimals,
        "chain_status": head["chain_status"] or "not_deployed",
        "totals": totals,
        "display": {key: money(value) for key, value in totals.items() if key != "revoked"},
        "pending": pending,
        "people": {"allocated": people["people"], "served": people["served"]},
        "vendors": vendors[:VENDOR_ROWS],
        "vendor_count": len(vendors),
        "feed": _feed(conn, project_id, money),
        "failed_txs": _failed_txs(conn, project_id),
        "failed_tx_total": head["failed_txs"],
        "queues": _queues(conn, project_id),
        "batches_in_flight": head["batches_in_flight"],
        "chart": _chart(conn, project_id, now, settled),
        "generated_at": iso(now),
        "version": version,
        # Read with the figures: a load that finds another count knows this is stale.
        "changes": int(head["changes"] or 0),
    }


def _changes_of(project_id: int):
    """The project's count of steps the totals triggers took, as one SQL expression: it moves
    in the commit of every change to a redemption or an entitlement (``triggers``)."""
    sums = [
        select(func.coalesce(func.sum(table.c.changes), 0))
        .where(table.c.project_id == project_id)
        .scalar_subquery()
        for table in (vendor_totals, people_totals)
    ]
    return sums[0] + sums[1]


def changes(conn: Connection, project_id: int) -> int:
    """What ``build`` stores as ``changes``, read alone: a few dozen small rows per project."""
    return int(conn.scalar(select(_changes_of(project_id))))


def _head(conn: Connection, project_id: int) -> dict:
    """The single figures in one round trip: the token, entitlement sums and people counts (at
    most ``SHARDS`` rows, however many people), failed transactions and batches in flight."""
    t = people_totals.c

    def chain(column):
        return select(column).where(ProjectChain.project_id == project_id).scalar_subquery()

    failed = (
        select(func.count())
        .select_from(ChainTx)
        .where(*_failed_where(project_id))
        .scalar_subquery()
    )
    batches = (
        select(func.count())
        .select_from(DisbursementBatch)
        .join(Disbursement, Disbursement.id == DisbursementBatch.disbursement_id)
        .where(
            Disbursement.project_id == project_id,
            Disbursement.status == RUNNING,
            DisbursementBatch.status.in_((B_PENDING, B_SENT)),
        )
        .scalar_subquery()
    )
    row = conn.execute(
        select(
            func.coalesce(func.sum(t.allocated), 0),
            func.coalesce(func.sum(t.redeemed), 0),
            func.coalesce(func.sum(t.revoked), 0),
            func.coalesce(func.sum(t.people), 0),
            func.coalesce(func.sum(t.served), 0),
            select(Project.currency).where(Project.id == project_id).scalar_subquery(),
            chain(ProjectChain.decimals),
            chain(ProjectChain.status),
            failed,
            batches,
            _changes_of(project_id),
        ).where(t.project_id == project_id)
    ).one()
    sums = ("allocated", "reserved", "revoked", "people", "served")
    found = dict(zip(sums, (int(v) for v in row[:5]), strict=True))
    found.update(
        zip(
            ("currency", "decimals", "chain_status", "failed_txs", "batches_in_flight", "changes"),
            row[5:],
            strict=True,
        )
    )
    return found


def _vendors(conn: Connection, project_id: int, money) -> list[dict]:
    """Every vendor with a payment confirmed or on its way, most confirmed first.

    One row per vendor and status from the running totals: the cost follows the number of
    vendors, never the number of redemptions.
    """
    t = vendor_totals.c
    rows = conn.execute(
        select(t.vendor_id, Vendor.name, t.status, t.count, t.amount, t.last_at)
        .join(Vendor, Vendor.id == t.vendor_id)
        .where(t.project_id == project_id, t.status.in_(COUNTED), t.count > 0)
    ).all()
    found: dict[int, dict] = {}
    for vendor_id, name, status, count, total, last_at in rows:
        row = found.setdefault(
            vendor_id,
            {
                "id": vendor_id,
                "name": name,
                "count": 0,
                "amount": 0,
                "pending": 0,
                "pending_amount": 0,
                "last_at": None,
            },
        )
        if status == SETTLED:
            row["count"] += int(count)
            row["amount"] += int(total)
        else:
            row["pending"] += int(count)
            row["pending_amount"] += int(total)
        if last_at is not None and (row["last_at"] is None or last_at > row["last_at"]):
            row["last_at"] = last_at
    ordered = sorted(
        found.values(), key=lambda v: (-v["amount"], -v["pending_amount"], v["name"], v["id"])
    )
    for row in ordered:
        row["amount_display"] = money(row["amount"])
        row["pending_display"] = money(row["pending_amount"])
        row["last_at"] = iso(row["last_at"])
    return ordered


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


def _failed_where(project_id: int) -> tuple:
    return (ChainTx.project_id == project_id, ChainTx.status.in_((REVERTED, TX_FAILED)))


def _failed_txs(conn: Connection, project_id: int) -> list[dict]:
    rows = conn.execute(
        select(ChainTx.id, ChainTx.purpose, ChainTx.status, ChainTx.error, ChainTx.updated_at)
        .where(*_failed_where(project_id))
        .order_by(ChainTx.id.desc())
        .limit(FAILED_TX_ROWS)
    ).all()
    return [
        {
            "id": tx_id,
            "purpose": purpose,
            "status": status,
            "error": (error or "")[:ERROR_CHARS],
            "at": iso(at),
        }
        for tx_id, purpose, status, error, at in rows
    ]


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
    return {
        "queue": name,
        "label": str(QUEUE_LABELS.get(name, name)),
        "highlight": name == CONTRACTS_QUEUE,
        **dict.fromkeys(ACTIVE_JOBS, 0),
    }


def _chart(conn: Connection, project_id: int, now: datetime, redeemed: int) -> dict:
    """Confirmed per minute over the last hours, and what was confirmed before, for a running
    total: at most ``CHART_MINUTES`` x ``MINUTE_SHARDS`` rows of the running totals."""
    start = (now - timedelta(minutes=CHART_MINUTES - 1)).replace(second=0, microsecond=0)
    first = int(start.replace(tzinfo=UTC).timestamp()) // 60
    t = minute_totals.c
    amounts = [0] * CHART_MINUTES
    counts = [0] * CHART_MINUTES
    rows = conn.execute(
        select(t.minute, func.sum(t.count), func.sum(t.amount))
        .where(t.project_id == project_id, t.minute >= first, t.minute < first + CHART_MINUTES)
        .group_by(t.minute)
    )
    for minute, count, amount in rows:
        amounts[int(minute) - first] += int(amount)
        counts[int(minute) - first] += int(count)
    return {
        "start": first * 60,
        "step": 60,
        "amounts": amounts,
        "counts": counts,
        # The running total starts here, so the line ends on the "redeemed" figure.
        "base": max(redeemed - sum(amounts), 0),
    }

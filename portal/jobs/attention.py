"""Stuck work, as staff must see it: what nothing alive will move on its own.

- a job whose worker is gone: running, and its lease expired (the sweeper takes it back
  within a sweep, but a job out of attempts, or a sweeper that is not running, leaves it);
- a failed job;
- a disbursement batch that is pending or "sent" with no transaction on its way and no job
  alive to send one (its job failed, was cancelled, finished without moving it, or lost its
  worker);
- a chain transaction not mined for long: open and sent (or signed) more than
  CHAIN_STUCK_SECONDS ago.

Each is a query, so the counts on the home page and the lists on the pages agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import Select, and_, func, not_, or_, select

from portal.chain.models import OPEN_STATUSES, ChainTx
from portal.disbursements.models import (
    B_PENDING,
    B_SENT,
    Disbursement,
    DisbursementBatch,
)
from portal.disbursements.models import (
    RUNNING as D_RUNNING,
)
from portal.extensions import db
from portal.jobs.models import FAILED, QUEUED, RETRYING, RUNNING, Job
from portal.projects import services as projects
from portal.timeutil import utcnow


def worker_gone(now=None):
    return and_(Job.status == RUNNING, Job.lease_expires_at < (now or utcnow()))


def job_alive(now=None):
    """A job that will still do something: waiting for a worker, or held by a live one."""
    now = now or utcnow()
    return or_(
        Job.status.in_((QUEUED, RETRYING)),
        and_(Job.status == RUNNING, Job.lease_expires_at >= now),
    )


def stuck_batches(project_ids=None, now=None) -> Select:
    """Batches of running disbursements with no transaction in flight and no live job."""
    now = now or utcnow()
    open_tx = (
        select(ChainTx.id)
        .where(ChainTx.id == DisbursementBatch.tx_id, ChainTx.status.in_(OPEN_STATUSES))
        .exists()
    )
    live_job = select(Job.id).where(Job.id == DisbursementBatch.job_id, job_alive(now)).exists()
    query = (
        select(DisbursementBatch)
        .join(Disbursement, Disbursement.id == DisbursementBatch.disbursement_id)
        .where(
            Disbursement.status == D_RUNNING,
            DisbursementBatch.status.in_((B_PENDING, B_SENT)),
            not_(open_tx),
            not_(live_job),
        )
    )
    if project_ids is not None:
        query = query.where(Disbursement.project_id.in_(project_ids))
    return query


def stuck_since(now=None):
    seconds = current_app.config["CHAIN_STUCK_SECONDS"]
    return (now or utcnow()) - timedelta(seconds=seconds)


def stuck_transactions(project_ids=None, now=None) -> Select:
    """Open transactions sent (or, never accepted, signed) longer ago than CHAIN_STUCK_SECONDS."""
    query = select(ChainTx).where(
        ChainTx.status.in_(OPEN_STATUSES),
        func.coalesce(ChainTx.sent_at, ChainTx.created_at) < stuck_since(now),
    )
    if project_ids is not None:
        query = query.where(ChainTx.project_id.in_(project_ids))
    return query


def tx_is_stuck(tx: ChainTx, now=None) -> bool:
    return tx.status in OPEN_STATUSES and (tx.sent_at or tx.created_at) < stuck_since(now)


@dataclass
class Attention:
    lost_jobs: int = 0
    failed_jobs: int = 0
    stuck_batches: int = 0
    stuck_transactions: int = 0
    chain_alerts: int = 0  # chain-wide (deep rollback, nonce gap, fee ceiling), not per project
    first_batch_disbursement: int | None = None  # where the link for batches goes
    first_tx_project: int | None = None

    @property
    def total(self) -> int:
        return (
            self.lost_jobs
            + self.failed_jobs
            + self.stuck_batches
            + self.stuck_transactions
            + self.chain_alerts
        )


def _count(query: Select) -> int:
    return db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))


def for_user(user) -> Attention:
    """What needs attention among the work the user may see."""
    from portal.jobs.services import visible

    now = utcnow()
    found = Attention()
    if user.can("job.read"):
        found.lost_jobs = _count(visible(user).where(worker_gone(now)))
        found.failed_jobs = _count(visible(user).where(Job.status == FAILED))
    ids = projects.visible_project_ids(user)
    if user.can("disbursement.manage"):
        batches = stuck_batches(ids, now)
        found.stuck_batches = _count(batches)
        if found.stuck_batches:
            found.first_batch_disbursement = db.session.scalar(
                batches.with_only_columns(DisbursementBatch.disbursement_id).limit(1)
            )
    if user.can("chain.details.read"):
        txs = stuck_transactions(ids, now)
        found.stuck_transactions = _count(txs)
        if found.stuck_transactions:
            found.first_tx_project = db.session.scalar(
                txs.with_only_columns(ChainTx.project_id).order_by(ChainTx.id).limit(1)
            )
    if user.can("chain.manage") and user.can("chain.details.read"):
        from portal.chain import alerts
        from portal.projects.models import Project

        found.chain_alerts = sum(alerts.open_counts().values())
        if found.chain_alerts and found.first_tx_project is None:
            # Alerts belong to the chain, not a project; any project's Transactions page shows them.
            first = select(func.min(Project.id))
            found.first_tx_project = db.session.scalar(
                first if ids is None else first.where(Project.id.in_(ids))
            )
        if found.first_tx_project is None:
            found.chain_alerts = 0  # no page of theirs would show them
    return found


def stuck_batch_ids(disbursement_id: int) -> set[int]:
    query = stuck_batches().where(DisbursementBatch.disbursement_id == disbursement_id)
    return set(db.session.scalars(query.with_only_columns(DisbursementBatch.id)))


def restart_batch(batch: DisbursementBatch, user_id: int | None) -> Job:
    """Send a stuck batch again: retry its job, or give it a new one if its job finished.

    Safe at any moment: the batch row is locked, so two restarts run one after the other and
    the second finds a live job (refused); a batch with a transaction in flight or a live job
    is not stuck (refused); retrying the job is itself conditional. The batch job looks at the
    chain before sending (an open transaction, the batch already done on chain), so a restart
    never allocates twice.
    """
    from portal.errors import InvalidTransition
    from portal.jobs import dispatch
    from portal.jobs import services as jobs
    from portal.jobs.kinds import DISBURSEMENT_BATCH

    db.session.execute(
        select(DisbursementBatch.id).where(DisbursementBatch.id == batch.id).with_for_update()
    )
    db.session.refresh(batch)
    if batch.id not in stuck_batch_ids(batch.disbursement_id):
        raise InvalidTransition(
            f"Batch {batch.number} is not stuck: a transaction or a job is still working on it."
        )
    job = db.session.get(Job, batch.job_id) if batch.job_id else None
    if job is not None and job.can_retry:
        return jobs.retry(job)
    disbursement = db.session.get(Disbursement, batch.disbursement_id)
    job = dispatch.enqueue(
        DISBURSEMENT_BATCH.name,
        {"batch_id": batch.id},
        project_id=disbursement.project_id,
        created_by_id=user_id,
    )
    batch.job_id = job.id
    return job


def follow_up_stuck_tx(tx: ChainTx) -> Job | None:
    """Queue a follow-up for a transaction not mined for long, unless one is alive already.

    The follow-up re-sends the stored transaction or replaces it with a higher fee (up to the
    configured ceiling); two at once are harmless (the final outcome is claimed once), so this
    is safe at any moment. The transaction row is locked so two clicks queue one job.
    """
    import json

    from portal.errors import InvalidTransition
    from portal.jobs import dispatch
    from portal.jobs.kinds import CHAIN_CONFIRM

    db.session.execute(select(ChainTx.id).where(ChainTx.id == tx.id).with_for_update())
    db.session.refresh(tx)
    if not tx_is_stuck(tx):
        raise InvalidTransition(f"Transaction {tx.id} is not stuck (it is {tx.status}).")
    payload = json.dumps({"tx_id": tx.id}, separators=(",", ":"), sort_keys=True)
    alive = db.session.scalar(
        select(Job.id)
        .where(Job.kind == CHAIN_CONFIRM.name, Job.payload_json == payload, job_alive())
        .limit(1)
    )
    if alive is not None:
        return None
    return dispatch.enqueue(CHAIN_CONFIRM.name, {"tx_id": tx.id}, project_id=tx.project_id)

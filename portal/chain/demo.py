"""The demo project on the embedded chain: deployed, funded and its first group allocated.

``make run`` should open on a portal where a vendor can charge a beneficiary at once. The steps
are the real jobs (deploy, fund, disbursement batches, receipt follow-ups), run here one after
another in this process rather than by a worker, and recorded as succeeded: the messages also
sent to the broker find their jobs done and are skipped.
"""

from __future__ import annotations

import importlib
import json

from sqlalchemy import select

from portal.chain import client, setup
from portal.disbursements import services as disbursements
from portal.extensions import db
from portal.jobs import lifecycle
from portal.jobs.models import CLAIMABLE, Job
from portal.money import amounts

CHAIN_KINDS = (
    "chain.deploy",
    "chain.confirm",
    "chain.fund",
    "chain.vendor_sync",
    "disbursement.batch",
)


def run_jobs_inline(kinds=CHAIN_KINDS, limit: int = 200) -> int:
    """Run queued jobs of these kinds to completion in this process; returns how many ran."""
    from workers.actors import ACTOR_MODULES, HANDLERS

    for module in ACTOR_MODULES:
        importlib.import_module(module)
    ran = 0
    while ran < limit:
        job_id = db.session.scalar(
            select(Job.id)
            .where(Job.kind.in_(kinds), Job.status.in_(CLAIMABLE))
            .order_by(Job.id)
            .limit(1)
        )
        if job_id is None:
            return ran
        job = lifecycle.claim(job_id)
        if job is None:
            continue
        try:
            result = HANDLERS[job.kind](job)
        except Exception as exc:
            lifecycle.fail(job_id, exc, job.lease_token)
            raise
        if result is not None:
            db.session.get(Job, job_id).result_json = json.dumps(result, default=str)
        lifecycle.succeed(job_id, job.lease_token)
        ran += 1
    return ran


def seed_chain(
    project, group, amount: str = "1500", funding: str = "100000", *, requester, approver
) -> bool:
    """Deploy, fund and allocate to the group; only on the embedded chain (False otherwise).

    Funding and the allocation go through four-eyes like anyone's: ``requester`` asks,
    ``approver`` (another person holding the approve permissions) approves.
    """
    from portal.approvals import services as approvals
    from portal.chain import funding_approval
    from portal.disbursements import start_approval

    if not client.is_embedded():
        return False
    decimals = 2
    setup.start_deploy(project, "WR26", decimals, None)
    db.session.commit()
    run_jobs_inline()
    asked = funding_approval.ask(
        project, amounts.parse(funding, decimals), "Demo grant", requester.id
    )
    approvals.approve(asked, approver, "Demo: grant agreement signed")
    db.session.commit()
    run_jobs_inline()
    disbursement, _ = disbursements.create(
        project,
        title="First distribution: winter food basket",
        amount=amounts.parse(amount, decimals),
        group_id=group.id,
        beneficiary_ids=None,
        batch_size=10,
        user_id=None,
    )
    asked = start_approval.ask(disbursement, requester.id)
    approvals.approve(asked, approver, "")
    db.session.commit()
    run_jobs_inline()
    return True

"""Chain jobs: transaction follow-ups, contract deployment, funding, disbursement batches."""

from __future__ import annotations

from flask import current_app

from portal.chain import ledger_verify, settlement, setup, treasury, txmanager, vendors
from portal.chain.models import PENDING, ChainTx
from portal.disbursements import services as disbursements
from portal.extensions import db
from portal.jobs import dispatch
from portal.jobs.kinds import (
    CHAIN_CONFIRM,
    CHAIN_DEPLOY,
    CHAIN_FUND,
    CHAIN_LEDGER_VERIFY,
    CHAIN_MINT_WATCH,
    CHAIN_SETTLE,
    CHAIN_VENDOR_SYNC,
    DISBURSEMENT_BATCH,
)
from portal.jobs.lifecycle import PermanentJobError
from workers.actors import handles


@handles(CHAIN_CONFIRM.name)
def confirm(job) -> dict:
    tx = db.session.get(ChainTx, job.payload.get("tx_id"))
    if tx is None:
        raise PermanentJobError("The transaction this job was for no longer exists.")
    # Run by the thread that signed the transaction (dispatch.enqueue(here=True)): a short
    # wait, since that thread's next job waits meanwhile.
    here = dispatch.running_here()
    wait = current_app.config["CHAIN_RECEIPT_WAIT_HERE_SECONDS"] if here else None
    again = txmanager.follow_up(tx, wait_seconds=wait)
    if again is not None:
        if here and tx.status != PENDING:
            # Out on the chain, no receipt (or no finality) yet: a follow-up job of its own
            # takes over at once, with the full wait.
            again = 0.0
        # Not final yet: a fresh follow-up later, rather than a failed try counted as an error.
        dispatch.enqueue(
            CHAIN_CONFIRM.name,
            {"tx_id": tx.id},
            project_id=tx.project_id,
            delay_ms=int(again * 1000) or None,
        )
    return {"tx_id": tx.id, "status": tx.status, "next_check_s": again, "here": here}


@handles(CHAIN_DEPLOY.name)
def deploy(job) -> dict:
    return {"step": setup.deploy_step(job.payload["project_id"])}


@handles(CHAIN_FUND.name)
def fund(job) -> dict:
    return {"step": setup.fund_step(job.payload["funding_id"])}


@handles(DISBURSEMENT_BATCH.name)
def batch(job) -> dict:
    return {"step": disbursements.run_batch(job.payload["batch_id"])}


@handles(CHAIN_MINT_WATCH.name)
def mint_watch(job) -> dict:
    return {"step": treasury.look_for_mint(job.payload["funding_id"])}


@handles(CHAIN_VENDOR_SYNC.name)
def vendor_sync(job) -> dict:
    return {"step": vendors.sync(job.payload["project_id"], job.payload["vendor_id"])}


@handles(CHAIN_SETTLE.name)
def settle(job) -> dict:
    return {"step": settlement.send(job.payload["settlement_id"])}


@handles(CHAIN_LEDGER_VERIFY.name)
def verify(job) -> dict:
    return ledger_verify.run_job(job)

"""Disbursements: who gets how much, checked against funding, sent in batches, followed live.

A disbursement is created as a draft with its items and batches fixed (so the count shown is the
count sent), then started: one ``disbursement.batch`` job per batch on the contracts queue. A
batch job first asks the contract whether its batch id is already done, so a job re-run after a
crash never allocates anyone twice; the confirmed receipt, not the send, moves the entitlements.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, insert, select, update

from portal import events, realtime
from portal.beneficiaries.models import ACTIVE, Beneficiary, GroupMember, ProjectBeneficiary
from portal.chain import addresses, contracts, effects, guardian, setup, txmanager
from portal.chain.models import (
    CONFIRMED as TX_CONFIRMED,
)
from portal.chain.models import (
    DEPLOYED,
    OPEN_STATUSES,
    BeneficiaryWallet,
    ChainTx,
    ProjectChain,
)
from portal.dashboard.models import people_totals
from portal.disbursements.models import (
    B_CONFIRMED,
    B_FAILED,
    B_PENDING,
    B_SENT,
    CANCELLED,
    COMPLETED,
    DRAFT,
    FAILED,
    RUNNING,
    Disbursement,
    DisbursementBatch,
    DisbursementItem,
)
from portal.errors import Conflict, NotFound, ValidationFailed
from portal.extensions import db
from portal.i18n.formatting import number as format_number
from portal.jobs import dispatch
from portal.jobs.kinds import MESSAGES_ALLOCATION
from portal.jobs.lifecycle import PermanentJobError, RefusedJob
from portal.ledger import display, labels
from portal.ledger import entitlements as ledger
from portal.money import amounts
from portal.projects import services as projects
from portal.projects.models import Project
from portal.timeutil import utcnow
from portal.transitions import change, current_status, move

PROGRESS = "disbursement.progress"
REF = "disbursement_batch"


def room(disbursement_id: int) -> str:
    return f"disbursement:{disbursement_id}"


def visible(user):
    return projects.scope(select(Disbursement), Disbursement.project_id, user).order_by(
        Disbursement.id.desc()
    )


def get_visible(user, disbursement_id: int) -> Disbursement:
    found = db.session.scalar(visible(user).where(Disbursement.id == disbursement_id))
    if found is None:
        raise NotFound(_("No such disbursement."))
    return found


def committed_total(project_id: int) -> int:
    """Base units promised by disbursements that have started (whatever their batches did)."""
    return db.session.scalar(
        select(func.coalesce(func.sum(Disbursement.total), 0)).where(
            Disbursement.project_id == project_id,
            Disbursement.status.not_in((DRAFT, CANCELLED)),
        )
    )


def available(project_id: int, committed: int | None = None) -> int:
    """Funded tokens not yet promised to anyone (revoked entitlements come back); pass
    ``committed`` when the caller already has ``committed_total``."""
    pc = setup.state(project_id)
    if pc is None:
        return 0
    # The running total the entitlements' triggers keep (portal/dashboard), not a sum over
    # every person's entitlement: at most a few rows per project, however many people.
    revoked = db.session.scalar(
        select(func.coalesce(func.sum(people_totals.c.revoked), 0)).where(
            people_totals.c.project_id == project_id
        )
    )
    if committed is None:
        committed = committed_total(project_id)
    return pc.funded + revoked - committed


def _recipients(project: Project, group_id: int | None, beneficiary_ids: list[int] | None):
    """(beneficiary id, address) of active people in the project, group or selection."""
    query = (
        select(Beneficiary.id)
        .join(ProjectBeneficiary, ProjectBeneficiary.beneficiary_id == Beneficiary.id)
        .where(ProjectBeneficiary.project_id == project.id, Beneficiary.status == ACTIVE)
        .order_by(Beneficiary.id)
    )
    if group_id is not None:
        query = query.join(GroupMember, GroupMember.beneficiary_id == Beneficiary.id).where(
            GroupMember.group_id == group_id
        )
    if beneficiary_ids is not None:
        query = query.where(Beneficiary.id.in_(beneficiary_ids))
    ids = list(db.session.scalars(query))
    if project.type != "cash":
        return [(bid, addresses.pseudonym(bid)) for bid in ids], 0
    wallets = (
        dict(
            db.session.execute(
                select(BeneficiaryWallet.beneficiary_id, BeneficiaryWallet.address).where(
                    BeneficiaryWallet.beneficiary_id.in_(ids)
                )
            ).all()
        )
        if ids
        else {}
    )
    # Cash goes only to wallets people gave us; the others are counted, not silently dropped.
    return [(bid, wallets[bid]) for bid in ids if bid in wallets], len(ids) - len(wallets)


class Shortfall(Conflict):
    """Starting would promise more than the project holds; ``needed`` base units more."""

    def __init__(self, message: str, needed: int):
        super().__init__(message)
        self.needed = needed


def shortfall(disbursement: Disbursement, free: int | None = None) -> int:
    """Base units the project lacks to start this draft (0 when it is covered)."""
    if free is None:
        free = available(disbursement.project_id)
    return max(disbursement.total - free, 0)


def people_for(
    project: Project,
    amount: int,
    group_id: int | None,
    beneficiary_ids: list[int] | None,
    batch_size: int,
) -> tuple[list[tuple[int, str]], int]:
    """Check a draft's inputs; the people it pays and how many were left out."""
    projects.ensure_writable(project)
    pc = setup.state(project.id)
    if pc is None or pc.status != DEPLOYED:
        raise Conflict(_("Set up and fund the project's payments before disbursing."))
    amounts.check(amount, pc.decimals)
    if group_id is None and not beneficiary_ids:
        raise ValidationFailed({"group_id": _("Choose a group, or select people on the list.")})
    people, left_out = _recipients(project, group_id, beneficiary_ids)
    if not people:
        raise ValidationFailed(
            {
                "group_id": _(
                    "Nobody to pay: no active person in the project "
                    "matches (cash projects need a wallet address)."
                )
            }
        )
    if amount * len(people) > amounts.COLUMN_MAX:
        raise amounts.AmountError(
            _(
                "%(num)s people times this amount is more than a project can hold.",
                num=format_number(len(people)),
            )
        )
    if not 1 <= batch_size <= 1000:
        raise ValidationFailed({"batch_size": _("Between 1 and 1000 people per transaction.")})
    return people, left_out


def fill(disbursement: Disbursement, people: list[tuple[int, str]]) -> None:
    """Write the draft's batches and items for ``people``."""
    size, amount = disbursement.batch_size, disbursement.amount_each
    for number, start in enumerate(range(0, len(people), size), start=1):
        chunk = people[start : start + size]
        batch = DisbursementBatch(
            disbursement_id=disbursement.id,
            number=number,
            batch_key=addresses.batch_key(disbursement.id, number),
            size=len(chunk),
        )
        db.session.add(batch)
        db.session.flush()
        db.session.execute(
            insert(DisbursementItem),
            [
                {
                    "disbursement_id": disbursement.id,
                    "batch_id": batch.id,
                    "beneficiary_id": bid,
                    "address": address,
                    "amount": amount,
                }
                for bid, address in chunk
            ],
        )


def create(
    project: Project,
    *,
    title: str,
    amount: int,
    group_id: int | None,
    beneficiary_ids: list[int] | None,
    batch_size: int,
    user_id: int | None,
) -> tuple[Disbursement, int]:
    """A draft of ``amount`` base units each (from ``amounts.parse``), with its items and
    batches; returns it and how many people were left out."""
    people, left_out = people_for(project, amount, group_id, beneficiary_ids, batch_size)
    disbursement = Disbursement(
        project_id=project.id,
        title=(title or "").strip()[:120] or "Disbursement",
        amount_each=amount,
        beneficiaries=len(people),
        total=amount * len(people),
        batch_size=batch_size,
        group_id=group_id,
        status=DRAFT,
        created_by_id=user_id,
    )
    db.session.add(disbursement)
    db.session.flush()
    fill(disbursement, people)
    changed(
        disbursement,
        "disbursement.created",
        {
            "amount_each": amount,
            "beneficiaries": len(people),
            "total": disbursement.total,
            "batch_size": batch_size,
            "left_out": left_out,
        },
    )
    return disbursement, left_out


def _locked_funding(project_id: int) -> ProjectChain | None:
    """The project's chain row, locked until the transaction ends, as committed now.

    Every start of a disbursement in the project takes this lock before it adds up what is
    promised: two starts at once queue here, and the second counts the first one's total.
    """
    return db.session.execute(
        select(ProjectChain)
        .where(ProjectChain.project_id == project_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def start(disbursement: Disbursement, user_id: int | None) -> None:
    """Start a draft: refused, changing nothing, if it has started already or if the funds
    not yet promised to other disbursements of the project do not cover it."""
    if disbursement.status != DRAFT:
        raise Conflict(_("This disbursement has already been started."))
    project = db.session.get(Project, disbursement.project_id)
    projects.ensure_writable(project)
    guardian.ensure_moving(project.id)
    pc = _locked_funding(project.id)
    # Every start in the project waits for that lock, so what is read now is what the others
    # committed: the status (a second start of this one) and the totals already promised.
    if current_status(Disbursement, disbursement.id) != DRAFT:
        raise Conflict(_("This disbursement has already been started."))
    free = ensure_covered(disbursement, project, pc)
    # Conditional all the same: the lock only orders the starts that take it.
    move(
        disbursement,
        (DRAFT,),
        RUNNING,
        _("This disbursement has already been started."),
        started_at=utcnow(),
    )
    for batch in disbursement.batches:
        batch.job_id = dispatch.enqueue(
            "disbursement.batch",
            {"batch_id": batch.id},
            project_id=project.id,
            created_by_id=user_id,
        ).id
    changed(disbursement, "disbursement.started", {"total": disbursement.total, "available": free})
    announce(disbursement)


def ensure_covered(disbursement: Disbursement, project: Project, pc=False) -> int:
    """The funds not yet promised, or ``Shortfall`` (a ``Conflict``) when they do not cover
    the draft; pass ``pc`` when the caller holds the project's chain row locked."""
    if pc is False:
        pc = setup.state(project.id)
    if pc is None:
        raise Conflict(_("Set up and fund the project's payments before disbursing."))
    free = available(project.id)
    needed = shortfall(disbursement, free)
    if needed:
        raise Shortfall(shortfall_message(project, pc, needed, free), needed)
    return free


def shortfall_message(project: Project, pc: ProjectChain, needed: int, free: int) -> str:
    def money(amount: int) -> str:
        return display.money(amount, pc)

    return _(
        "This disbursement needs %(needed)s more: fund the project or reduce the amount. "
        "%(free)s of the %(funded)s funded is not yet promised to disbursements already started.",
        needed=money(needed),
        free=money(max(free, 0)),
        funded=money(pc.funded),
    )


def retry_batch(batch: DisbursementBatch, user_id: int | None) -> None:
    # Two retries at once must not queue two jobs for one batch.
    move(
        batch,
        (B_FAILED,),
        B_PENDING,
        lambda found: _(
            "Only a failed batch can be retried; this one is %(status)s.",
            status=labels.label("tx", found),
        ),
        error=None,
    )
    disbursement = batch.disbursement
    disbursement.status = RUNNING
    disbursement.finished_at = None
    batch.job_id = dispatch.enqueue(
        "disbursement.batch",
        {"batch_id": batch.id},
        project_id=disbursement.project_id,
        created_by_id=user_id,
    ).id
    changed(disbursement, "disbursement.batch_retried", {"batch": batch.number})
    announce(disbursement)


def _open_tx(batch: DisbursementBatch) -> ChainTx | None:
    return db.session.scalar(
        select(ChainTx).where(
            ChainTx.ref_type == REF, ChainTx.ref_id == batch.id, ChainTx.status.in_(OPEN_STATUSES)
        )
    )


def run_batch(batch_id: int) -> str:
    """The ``disbursement.batch`` job: send this batch unless it is done or on its way."""
    batch = db.session.get(DisbursementBatch, batch_id)
    if batch is None:
        raise PermanentJobError("The batch this job was for no longer exists.")
    if batch.status == B_CONFIRMED:
        return "already confirmed"
    disbursement = batch.disbursement
    pc = setup.state(disbursement.project_id)
    open_tx = _open_tx(batch)
    if open_tx is not None:
        # A worker may have died between the broadcast and sending the follow-up job.
        txmanager.ensure_follow_up(open_tx)
        return "already sent, waiting for its receipt"
    contract = contracts.at(pc.contract_kind, pc.contract_address)
    if contract.functions.batchDone(batch.batch_key).call():
        # Sent before a crash and mined, but never recorded here: the chain is the truth. A
        # follow-up of the same batch may be applying it right now: the effect row keeps it once.
        _apply_confirmed(batch, batch.tx_id)
        return "found done on chain"
    items = list(
        db.session.scalars(
            select(DisbursementItem.address)
            .where(DisbursementItem.batch_id == batch.id)
            .order_by(DisbursementItem.id)
        )
    )
    function = "disburse" if pc.contract_kind == contracts.CASH_TRANSFER else "allocate"
    data = contracts.encode(
        pc.contract_kind, function, batch.batch_key, items, disbursement.amount_each
    )
    batch.status = B_SENT
    batch.error = None
    try:
        tx = txmanager.submit(
            purpose=function,
            to=pc.contract_address,
            data=data,
            project_id=pc.project_id,
            ref=(REF, batch.id),
        )
    except txmanager.Reverted as exc:
        batch.status = B_FAILED
        batch.error = exc.reason
        batch.tx_id = exc.tx.id
        _settle(disbursement)
        raise RefusedJob(
            f"Batch {batch.number} refused by the payment network: {exc.reason}"
        ) from exc
    batch.tx_id = tx.id
    announce(disbursement)
    return f"sent as transaction {tx.id}"


def _apply_confirmed(batch: DisbursementBatch, tx_id: int | None = None) -> bool:
    """Mark the batch confirmed and credit its people, once whoever calls (see chain/effects)."""
    disbursement = batch.disbursement
    pc = setup.state(disbursement.project_id)
    credits = pc.contract_kind == contracts.ENTITLEMENTS
    amount = batch.size * disbursement.amount_each if credits else 0
    if not effects.apply(effects.BATCH, batch.id, tx_id=tx_id, amount=amount):
        return False
    change(
        DisbursementBatch,
        batch.id,
        (B_PENDING, B_SENT, B_FAILED),
        B_CONFIRMED,
        where=_of(disbursement),
        error=None,
    )
    db.session.refresh(batch, attribute_names=["status", "error"])
    if credits:
        _credit_entitlements(batch, disbursement)
    _settle(disbursement)
    return True


def _of(disbursement: Disbursement) -> tuple:
    # Named in the WHERE so that watchers of batch changes (the live dashboard) find the project.
    return (DisbursementBatch.disbursement_id == disbursement.id,)


def _undo_confirmed(batch: DisbursementBatch, tx: ChainTx) -> bool:
    """The chain dropped the batch's transaction: its credits are taken back (once) and the batch
    waits for the transaction, which is sent again, to be mined anew."""
    undone = effects.undo(effects.BATCH, batch.id)
    if undone is None:
        return False
    disbursement = batch.disbursement
    change(DisbursementBatch, batch.id, (B_CONFIRMED,), B_SENT, where=_of(disbursement), error=None)
    db.session.refresh(batch, attribute_names=["status", "error"])
    if undone.amount:
        people = select(DisbursementItem.beneficiary_id).where(
            DisbursementItem.batch_id == batch.id
        )
        ledger.uncredit(disbursement.project_id, people, disbursement.amount_each)
    change(Disbursement, disbursement.id, (COMPLETED, FAILED), RUNNING, finished_at=None)
    db.session.refresh(disbursement, attribute_names=["status", "finished_at"])
    changed(
        disbursement,
        "disbursement.batch_rolled_back",
        {"batch": batch.number, "tx_id": tx.id, "amount": undone.amount},
    )
    announce(disbursement)
    return True


def _credit_entitlements(batch: DisbursementBatch, disbursement: Disbursement) -> None:
    items = db.session.execute(
        select(
            DisbursementItem.beneficiary_id, DisbursementItem.address, DisbursementItem.amount
        ).where(DisbursementItem.batch_id == batch.id)
    ).all()
    if not items:
        return
    ledger.credit(
        disbursement.project_id,
        ((item.beneficiary_id, item.address, item.amount) for item in items),
    )
    # Each person is told in their language, by a job of its own after this commits: a batch
    # confirmed again after a reorg queues the job again, which finds the messages already sent.
    dispatch.enqueue(
        MESSAGES_ALLOCATION.name, {"batch_id": batch.id}, project_id=disbursement.project_id
    )


def _settle(disbursement: Disbursement) -> None:
    """Complete (or fail) the disbursement once every batch is final.

    Batches are confirmed by follow-up jobs running side by side: each would see only its own
    batch confirmed and none would complete the disbursement. Taking the disbursement row's lock
    first (an UPDATE) makes them queue here, and each then reads the others' committed states.
    """
    db.session.execute(
        update(Disbursement)
        .where(Disbursement.id == disbursement.id)
        .values(status=Disbursement.status)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    statuses = list(
        db.session.scalars(
            select(DisbursementBatch)
            .where(DisbursementBatch.disbursement_id == disbursement.id)
            .execution_options(populate_existing=True)
        )
    )
    db.session.refresh(disbursement)
    states = [b.status for b in statuses]
    if all(s == B_CONFIRMED for s in states):
        disbursement.status = COMPLETED
        disbursement.finished_at = utcnow()
    elif all(s in (B_CONFIRMED, B_FAILED) for s in states):
        disbursement.status = FAILED
        disbursement.finished_at = utcnow()
    announce(disbursement)


def progress(disbursement: Disbursement) -> dict:
    batches = disbursement.batches
    confirmed = [b for b in batches if b.status == B_CONFIRMED]
    people = sum(b.size for b in confirmed)
    return {
        "id": disbursement.id,
        "project_id": disbursement.project_id,
        "status": disbursement.status,
        "batches": len(batches),
        "confirmed_batches": len(confirmed),
        "failed_batches": sum(1 for b in batches if b.status == B_FAILED),
        "people": disbursement.beneficiaries,
        "people_done": people,
        "percent": people * 100 // disbursement.beneficiaries if disbursement.beneficiaries else 0,
        "batch_states": [
            {
                "id": b.id,
                "number": b.number,
                "status": b.status,
                "size": b.size,
                "error": b.error,
                "tx_id": b.tx_id,
            }
            for b in batches
        ],
    }


def changed(disbursement: Disbursement, action: str, data: dict) -> None:
    """For the audit log: amounts in base units, never who is paid."""
    events.disbursement_changed.send(
        disbursement,
        action=action,
        summary=f"Disbursement {disbursement.id} {action.split('.', 1)[1].replace('_', ' ')}",
        project_id=disbursement.project_id,
        data=data,
    )


def announce(disbursement: Disbursement) -> None:
    realtime.emit_after_commit(
        PROGRESS,
        progress(disbursement),
        [room(disbursement.id), realtime.project_room(disbursement.project_id)],
    )


def _on_final(tx: ChainTx, receipt=None, **_) -> None:
    if tx.ref_type != REF:
        return
    batch = db.session.get(DisbursementBatch, tx.ref_id)
    if batch is None:
        return
    if tx.status == TX_CONFIRMED:
        _apply_confirmed(batch, tx.id)
    elif not effects.applied(effects.BATCH, batch.id) and change(
        DisbursementBatch,
        batch.id,
        (B_PENDING, B_SENT),
        B_FAILED,
        where=_of(batch.disbursement),
        error=tx.error,
    ):
        db.session.refresh(batch, attribute_names=["status", "error"])
        _settle(batch.disbursement)


def _on_undone(tx: ChainTx, *, was: str, **_) -> None:
    if tx.ref_type != REF or was != TX_CONFIRMED:
        return
    batch = db.session.get(DisbursementBatch, tx.ref_id)
    if batch is not None:
        _undo_confirmed(batch, tx)


def connect() -> None:
    events.chain_tx_final.connect(_on_final, weak=False)
    events.chain_tx_undone.connect(_on_undone, weak=False)


@realtime.topic("disbursement", "disbursement.manage")
def disbursement_topic(user, params: dict):
    disbursement = get_visible(user, realtime.id_param(params, "id"))
    return [room(disbursement.id)], {"progress": progress(disbursement)}

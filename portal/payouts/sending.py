"""Mobile-money payouts in jobs: send, then find out how it ended.

``send`` (job ``payouts.send``) asks the provider for the transfer with the payout's reference;
a retry after a timeout uses the same reference, and the provider's 409 for a reference it has
means the first request got through. ``check`` (job ``payouts.check``, the sweeper, a callback)
asks the provider for the status and moves the payout only on what the status query says.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update

from portal.extensions import db
from portal.jobs.dispatch import enqueue
from portal.jobs.kinds import PAYOUT_CHECK
from portal.jobs.lifecycle import PermanentJobError, RefusedJob, RetryKeepingWork
from portal.money import amounts
from portal.payouts import services
from portal.payouts.models import FAILED, MOMO, PENDING, SENT, Payout
from portal.payouts.momo import MomoClient, MomoError
from portal.timeutil import utcnow


def send(payout_id: int) -> str:
    payout = db.session.get(Payout, payout_id)
    if payout is None or payout.kind != MOMO:
        raise PermanentJobError("The payout this job was for is not a mobile-money payout.")
    if payout.status != PENDING:
        return f"already {payout.status}"
    db.session.execute(
        update(Payout)
        .where(Payout.id == payout_id)
        .values(send_attempts=Payout.send_attempts + 1)
        .execution_options(synchronize_session=False)
    )
    try:
        client = MomoClient()
        answer = client.transfer(
            payout.reference,
            amounts.plain(payout.amount, payout.decimals),
            payout.currency,
            payout.payee_account,
            payout.narrative,
        )
    except MomoError as exc:
        if exc.permanent:
            services.move(
                payout_id, (PENDING,), FAILED, why="the provider refused it", reason=str(exc)
            )
            raise RefusedJob(str(exc)) from None
        raise RetryKeepingWork(str(exc)) from None
    why = "accepted by the provider" if answer == "accepted" else "the provider had it already"
    services.move(payout_id, (PENDING,), SENT, why=why)
    delay = int(current_app.config["PAYOUT_CHECK_AFTER_SECONDS"]) * 1000
    enqueue(
        PAYOUT_CHECK.name, {"payout_id": payout_id}, project_id=payout.project_id, delay_ms=delay
    )
    return answer


def check(payout_id: int) -> str:
    """Ask the provider how the payout stands and move it accordingly; what was found."""
    payout = db.session.get(Payout, payout_id)
    if payout is None or payout.kind != MOMO:
        raise PermanentJobError("The payout this job was for is not a mobile-money payout.")
    if payout.status not in (PENDING, SENT):
        return f"already {payout.status}"
    try:
        found = MomoClient().status(payout.reference)
    except MomoError as exc:
        if exc.permanent:
            raise RefusedJob(str(exc)) from None
        raise RetryKeepingWork(str(exc)) from None
    db.session.execute(
        update(Payout)
        .where(Payout.id == payout_id)
        .values(last_checked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if found is None:
        # Never reached the provider: a pending payout's send job is still to run (or retry).
        return "unknown to the provider"
    services.provider_said(payout_id, found.status, found.reason)
    return found.status


def due_for_check(limit: int = 200) -> list[int]:
    """Mobile-money payouts whose final status is not known and was not asked for lately: sent
    ones whose callback may never come, and pending ones whose sending ran out of tries after a
    request the provider may have taken (a timeout)."""
    after = timedelta(seconds=int(current_app.config["PAYOUT_CHECK_AFTER_SECONDS"]))
    now = utcnow()
    cutoff = now - after
    return list(
        db.session.scalars(
            select(Payout.id)
            .where(
                Payout.kind == MOMO,
                or_(
                    and_(Payout.status == SENT, Payout.sent_at < cutoff),
                    and_(
                        Payout.status == PENDING,
                        Payout.send_attempts > 0,
                        Payout.created_at < cutoff,
                    ),
                ),
                or_(Payout.last_checked_at.is_(None), Payout.last_checked_at < cutoff),
            )
            .order_by(Payout.id)
            .limit(limit)
        )
    )


def sweep() -> int:
    """The periodic part: a check job for every payout due; returns how many were queued."""
    ids = due_for_check()
    now = utcnow()
    for payout_id in ids:
        project_id = db.session.scalar(select(Payout.project_id).where(Payout.id == payout_id))
        # Marked asked-for now, so the next sweep does not queue it again while the job runs.
        db.session.execute(
            update(Payout)
            .where(Payout.id == payout_id)
            .values(last_checked_at=now)
            .execution_options(synchronize_session=False)
        )
        enqueue(PAYOUT_CHECK.name, {"payout_id": payout_id}, project_id=project_id)
    return len(ids)


def callback_heard(reference: str, claimed: str) -> Payout | None:
    """A callback named ``reference``: queue a status check (the body is not believed). None
    when no payout has that reference."""
    payout = db.session.scalar(select(Payout).where(Payout.reference == reference))
    if payout is None or payout.kind != MOMO:
        return None
    from portal import events

    events.payout_changed.send(
        payout,
        action="payout.callback",
        summary=f"Provider callback for payout {payout.id} (claims {claimed[:20] or 'nothing'}); "
        "the status is asked for before anything changes",
        project_id=payout.project_id,
        data={"payout_id": payout.id, "claimed": claimed[:20], "status": payout.status},
    )
    if payout.status in (PENDING, SENT):
        enqueue(PAYOUT_CHECK.name, {"payout_id": payout.id}, project_id=payout.project_id)
    return payout

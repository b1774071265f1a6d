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
    # The row lock is held until the job commits: a late "paid after all" of an earlier try
    # (``services.paid_after_failure``) waits for it, or stops this payout before it is sent.
    payout = db.session.scalar(select(Payout).where(Payout.id == payout_id).with_for_update())
    if payout is None or payout.kind != MOMO:
        raise PermanentJobError("The payout this job was for is not a mobile-money payout.")
    db.session.refresh(payout)
    if payout.status != PENDING:
        return f"already {payout.status}"
    held = _earlier_tries_settled(payout)
    if held:
        return held
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


def _earlier_tries_settled(payout: Payout) -> str:
    """Before a new try of the same value goes out, ask the provider about every earlier
    mobile-money try recorded failed: one it reports paid after all is recorded paid (and this
    try is stopped); one it still holds as pending keeps this try waiting. "" when clear."""
    earlier = [
        p
        for p in services.siblings(payout)
        if p.id < payout.id and p.kind == MOMO and p.status == FAILED
    ]
    if not earlier:
        return ""
    try:
        client = MomoClient()
        for old in earlier:
            found = client.status(old.reference)
            if found is None or found.status == "FAILED":
                continue
            if found.status == "SUCCESSFUL":
                services.paid_after_failure(
                    old.id, "the provider's status is SUCCESSFUL after it was recorded failed"
                )
                return f"not sent: payout {old.id} was paid after all"
            raise RetryKeepingWork(
                f"payout {old.id} of the same value is still pending at the provider"
            )
    except MomoError as exc:
        if exc.permanent:
            raise RefusedJob(str(exc)) from None
        raise RetryKeepingWork(str(exc)) from None
    return ""


def check(payout_id: int, after_failure: bool = False) -> str:
    """Ask the provider how the payout stands and move it accordingly; what was found.

    ``after_failure``: a callback came for a payout recorded failed (by someone's override, a
    statement, or an earlier answer). The provider's status query is believed: SUCCESSFUL then
    means it was paid after all."""
    payout = db.session.get(Payout, payout_id)
    if payout is None or payout.kind != MOMO:
        raise PermanentJobError("The payout this job was for is not a mobile-money payout.")
    late = after_failure and payout.status == FAILED
    if payout.status not in (PENDING, SENT) and not late:
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
    if late:
        if found.status == "SUCCESSFUL":
            services.paid_after_failure(
                payout_id, "the provider's status is SUCCESSFUL after it was recorded failed"
            )
        return found.status
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
    elif payout.status == FAILED:
        # Recorded failed, yet the provider calls: it may have paid after all. Asked, never
        # believed: only the status query moves it.
        enqueue(
            PAYOUT_CHECK.name,
            {"payout_id": payout.id, "after_failure": True},
            project_id=payout.project_id,
        )
    return payout

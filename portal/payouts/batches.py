"""Bank payouts go out in batches: finance builds one, downloads its file, marks it sent.

A payout joins one batch only (``batch_id IS NULL`` in the UPDATE's WHERE); marking a batch sent
is one conditional UPDATE of the batch, then of its pending payouts, so a double click or two
tabs mark it once.
"""

from __future__ import annotations

import secrets

from flask_babel import gettext as _
from sqlalchemy import func, select, update

from portal import events
from portal.errors import DomainError, InvalidTransition
from portal.extensions import db
from portal.payouts import services
from portal.payouts.models import (
    BANK,
    BATCH_OPEN,
    BATCH_SENT,
    PENDING,
    SENT,
    Payout,
    PayoutBatch,
)
from portal.timeutil import utcnow
from portal.transitions import change


def waiting(project_id: int) -> int:
    """Bank payouts of the project that no batch holds yet."""
    return db.session.scalar(
        select(func.count()).where(
            Payout.project_id == project_id,
            Payout.kind == BANK,
            Payout.status == PENDING,
            Payout.batch_id.is_(None),
        )
    )


def build(project_id: int, user_id: int | None) -> PayoutBatch:
    now = utcnow()
    batch = PayoutBatch(
        project_id=project_id,
        reference=f"PB-{project_id}-{now:%Y%m%d}-{secrets.token_hex(3).upper()}",
        status=BATCH_OPEN,
        created_by_id=user_id,
    )
    db.session.add(batch)
    db.session.flush()
    taken = db.session.execute(
        update(Payout)
        .where(
            Payout.project_id == project_id,
            Payout.kind == BANK,
            Payout.status == PENDING,
            Payout.batch_id.is_(None),
        )
        .values(batch_id=batch.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken:
        raise DomainError(_("No bank payouts are waiting for a batch in this project."))
    events.payout_batch_changed.send(
        batch,
        action="payout_batch.built",
        summary=f"Payout batch {batch.reference} built with {taken} bank payouts",
        project_id=project_id,
        data={"batch_id": batch.id, "payouts": taken},
    )
    return batch


def payouts_of(batch_id: int) -> list[Payout]:
    return list(
        db.session.scalars(select(Payout).where(Payout.batch_id == batch_id).order_by(Payout.id))
    )


def downloaded(batch: PayoutBatch, fmt: str, user_id: int | None) -> None:
    """The file holds account numbers: who took it, and when, is in the audit log."""
    events.payout_batch_changed.send(
        batch,
        action="payout_batch.downloaded",
        summary=f"Payout batch {batch.reference} downloaded as {fmt.upper()}",
        project_id=batch.project_id,
        data={"batch_id": batch.id, "format": fmt},
    )


def mark_sent(batch: PayoutBatch, user_id: int | None) -> int:
    """The file went to the bank: the batch and its pending payouts are sent; how many."""
    if not change(
        PayoutBatch,
        batch.id,
        (BATCH_OPEN,),
        BATCH_SENT,
        sent_at=utcnow(),
        sent_by_id=user_id,
    ):
        raise InvalidTransition(_("This batch is already marked sent."))
    db.session.refresh(batch)
    moved = 0
    for payout_id in db.session.scalars(
        select(Payout.id).where(Payout.batch_id == batch.id, Payout.status == PENDING)
    ).all():
        moved += services.move(payout_id, (PENDING,), SENT, why=f"in batch {batch.reference}")
    events.payout_batch_changed.send(
        batch,
        action="payout_batch.sent",
        summary=f"Payout batch {batch.reference} marked sent to the bank ({moved} payouts)",
        project_id=batch.project_id,
        data={"batch_id": batch.id, "payouts": moved},
    )
    return moved

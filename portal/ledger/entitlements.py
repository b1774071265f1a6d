"""What a beneficiary may spend in a project: credit, uncredit, reserve, release.

``redeemed`` counts every amount reserved for a payment, in flight or settled: a redemption's
reservation *is* its spend, so settling on chain writes no money row here (the redemption's status
says whether it is pending or spent), and a failed or cancelled one is released. Every operation is
one conditional statement evaluated by the database, so concurrent callers on the same row never
take an entitlement below zero or count an amount twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Select, update

from portal.disbursements.models import Entitlement
from portal.extensions import db
from portal.timeutil import utcnow
from portal.transitions import dialect_insert


def _left():
    return Entitlement.allocated - Entitlement.redeemed - Entitlement.revoked


def _of(project_id: int, beneficiary_id: int) -> tuple:
    return (Entitlement.project_id == project_id, Entitlement.beneficiary_id == beneficiary_id)


def credit(project_id: int, credits: Iterable[tuple[int, str, int]]) -> int:
    """Add confirmed allocations: ``(beneficiary_id, address, amount)`` each; a person's first
    credit in the project creates their entitlement. Returns how many people were credited."""
    now = utcnow()
    rows = [
        {
            "project_id": project_id,
            "beneficiary_id": beneficiary_id,
            "address": address,
            "allocated": amount,
            "redeemed": 0,
            "revoked": 0,
            "updated_at": now,
        }
        for beneficiary_id, address, amount in credits
    ]
    if not rows:
        return 0
    # In SQL, not in Python: another disbursement may be crediting the same person right now.
    statement = dialect_insert(Entitlement).values(rows)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=["project_id", "beneficiary_id"],
            set_={
                "allocated": Entitlement.allocated + statement.excluded.allocated,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )
    return len(rows)


def uncredit(project_id: int, beneficiary_ids: Select | list[int], amount_each: int) -> int:
    """Take back allocations the chain dropped (a reorg): ``amount_each`` from each person."""
    return db.session.execute(
        update(Entitlement)
        .where(
            Entitlement.project_id == project_id,
            Entitlement.beneficiary_id.in_(beneficiary_ids),
        )
        .values(allocated=Entitlement.allocated - amount_each, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount


def reserve(project_id: int, beneficiary_id: int, amount: int) -> bool:
    """Hold ``amount`` for a payment if that much is left; False (nothing written) otherwise."""
    return (
        db.session.execute(
            update(Entitlement)
            .where(*_of(project_id, beneficiary_id), _left() >= amount)
            .values(redeemed=Entitlement.redeemed + amount, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def release(project_id: int, beneficiary_id: int, amount: int) -> bool:
    """Give a reservation back (the payment failed or was cancelled). The caller's own
    conditional status change makes this happen once per payment; the guard here keeps the
    column from going below zero whatever a caller does."""
    return (
        db.session.execute(
            update(Entitlement)
            .where(*_of(project_id, beneficiary_id), Entitlement.redeemed >= amount)
            .values(redeemed=Entitlement.redeemed - amount, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )

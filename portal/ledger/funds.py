"""A project's funded total: tokens minted into its contract, as confirmed on chain."""

from __future__ import annotations

from sqlalchemy import update

from portal.chain.models import ProjectChain
from portal.extensions import db


def add_funded(project_id: int, amount: int) -> None:
    """Count a confirmed mint (or, negative, take back one the chain dropped)."""
    # In SQL, not in Python: two fundings may be confirmed (or rolled back) at the same moment.
    db.session.execute(
        update(ProjectChain)
        .where(ProjectChain.project_id == project_id)
        .values(funded=ProjectChain.funded + amount)
        .execution_options(synchronize_session=False)
    )


def rebase_funded(project_id: int, total: int) -> None:
    """Set the funded total to what a project's new token holds: a move to new contracts mints
    exactly what the old ones held, and that supply is the total from then on."""
    db.session.execute(
        update(ProjectChain)
        .where(ProjectChain.project_id == project_id)
        .values(funded=total)
        .execution_options(synchronize_session="evaluate")  # the loaded row follows
    )

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


def set_funded(project_id: int, amount: int) -> None:
    """Set the funded total to what the chain holds (a project migrated to a new contract: the
    new token's supply is the whole of it)."""
    db.session.execute(
        update(ProjectChain)
        .where(ProjectChain.project_id == project_id)
        .values(funded=amount)
        .execution_options(synchronize_session=False)
    )

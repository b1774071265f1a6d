"""Amounts in a project's currency, as pages, exports and statements write them."""

from __future__ import annotations

from portal.chain.models import ProjectChain
from portal.extensions import db
from portal.money import amounts


def number(amount: int, pc: ProjectChain | None) -> str:
    """The amount alone (a spreadsheet column beside its currency); base units with no token."""
    return str(amount) if pc is None else amounts.format(amount, pc.decimals)


def currency(pc: ProjectChain | None) -> str:
    """The project's currency (e.g. NPR): the token's symbol is an on-chain detail."""
    from portal.projects.models import Project

    if pc is None:
        return ""
    project = db.session.get(Project, pc.project_id)  # in the identity map on most pages
    return project.currency if project is not None else ""


def money(amount: int, pc: ProjectChain | None) -> str:
    """The amount with the project's currency, e.g. ``NPR 1,250.00``."""
    if pc is None:
        return number(amount, pc)
    return amounts.money(amount, pc.decimals, currency(pc))

"""Amounts in a project's currency, as pages, exports and statements write them."""

from __future__ import annotations

from portal.chain.models import ProjectChain
from portal.money import amounts


def number(amount: int, pc: ProjectChain | None) -> str:
    """The amount alone (a spreadsheet column beside its currency); base units with no token."""
    return str(amount) if pc is None else amounts.format(amount, pc.decimals)


def money(amount: int, pc: ProjectChain | None) -> str:
    """The amount with the project's currency, e.g. ``1,250.00 NPR``."""
    return number(amount, pc) if pc is None else f"{number(amount, pc)} {pc.symbol}"

"""Matching statement lines to payouts: by reference, then amount. A pure function, so its
rules can be tested on generated statements; ``services`` applies the result."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from portal.reconciliation.models import (
    AMOUNT_DIFFERS,
    DUPLICATE,
    MATCHED,
    NOT_PAID,
    UNEXPECTED,
)


@dataclass(frozen=True)
class Candidate:
    """A payout as matching sees it."""

    id: int
    amount: int
    open: bool  # sent or paid, and not yet paid for the books: a line may match it


@dataclass(frozen=True)
class Outcome:
    state: str
    payout_id: int | None


def match(
    lines: Iterable[tuple[str, int, bool]],
    payouts: dict[str, Candidate],
    already_matched: set[int] | frozenset[int] = frozenset(),
) -> list[Outcome]:
    """One outcome per ``(reference, amount, paid)`` line, in order.

    - a line the statement marks failed is kept as ``not_paid`` and matches nothing;
    - no payout with the reference (or one not sent): ``unexpected``;
    - the payout is matched already (earlier line or statement): ``duplicate``;
    - the amounts differ: ``amount_differs`` (the payout stays unmatched: a later line with
      the right amount still matches it);
    - otherwise ``matched``.
    """
    matched = set(already_matched)
    outcomes: list[Outcome] = []
    for reference, amount, paid in lines:
        payout = payouts.get(reference)
        if not paid:
            outcomes.append(Outcome(NOT_PAID, payout.id if payout else None))
        elif payout is None:
            outcomes.append(Outcome(UNEXPECTED, None))
        elif payout.id in matched:
            outcomes.append(Outcome(DUPLICATE, payout.id))
        elif not payout.open:
            outcomes.append(Outcome(UNEXPECTED, payout.id))
        elif amount != payout.amount:
            outcomes.append(Outcome(AMOUNT_DIFFERS, payout.id))
        else:
            matched.add(payout.id)
            outcomes.append(Outcome(MATCHED, payout.id))
    return outcomes

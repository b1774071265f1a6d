"""The registry of things that need approval. A feature registers its kind once; the approval
pages, rules and live updates need nothing else to know about it.

A kind names the permission an approver must hold, how to describe a request's subject in
plain words, where its subject's page is, and the function that carries out the action. That
function runs inside the transaction of the final approval: if it refuses (not enough funds,
the project closed), the approval is refused with it and nothing is kept.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

# Modules that register a kind when imported. A new kind (settlement) adds its module here.
KIND_MODULES = (
    "portal.chain.funding_approval",
    "portal.disbursements.start_approval",
    "portal.settlements.approval",
    "portal.settlements.repayment",
)


@dataclass(frozen=True)
class Outcome:
    """What the action made (``result_id``), and whether it is done (``executed``) or only
    approved, for an action that a later step completes (it calls ``services.mark_executed``)."""

    result_id: int | None = None
    executed: bool = True


@dataclass(frozen=True)
class Kind:
    name: str
    permission: str
    label: str  # "Funding", "Start of a disbursement"
    # request -> one line, e.g. "Fund Winter Relief with 1,000.00 WR26 (grant B)"
    describe: Callable[[object], str]
    # (request, approver id) -> Outcome; may raise a DomainError to refuse
    execute: Callable[[object, int], Outcome]
    # request -> the subject's page (a path), or None
    subject_url: Callable[[object], str | None]
    # At most one open request per subject (starting one disbursement twice makes no sense).
    one_open_per_subject: bool = False


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


def get(name: str) -> Kind:
    return KINDS[name]


def load() -> None:
    for module in KIND_MODULES:
        importlib.import_module(module)


def permissions() -> set[str]:
    return {kind.permission for kind in KINDS.values()}

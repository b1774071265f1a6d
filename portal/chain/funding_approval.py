"""Funding (a mint into the project's contract) waits for a second person's approval.

The fund form asks; the mint itself is ``setup.start_funding``, run by the final approval in its
transaction, as the person who asked.
"""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.approvals import kinds
from portal.approvals import services as approvals
from portal.chain import setup
from portal.chain.models import DEPLOYED
from portal.errors import Conflict
from portal.extensions import db
from portal.ledger import display
from portal.money import amounts
from portal.projects.models import Project

KIND = "funding"


def _shown(project_id: int, amount: int) -> str:
    return display.money(amount, setup.state(project_id))


def describe(request) -> str:
    project = db.session.get(Project, request.project_id)
    name = project.name if project else _("a project")
    amount = _shown(request.project_id, request.amount)
    if request.note:
        return _(
            "Fund %(project)s with %(amount)s (%(note)s)",
            project=name,
            amount=amount,
            note=request.note,
        )
    return _("Fund %(project)s with %(amount)s", project=name, amount=amount)


def execute(request, approver_id: int) -> kinds.Outcome:
    project = db.session.get(Project, request.project_id)
    funding = setup.start_funding(project, request.amount, request.note, request.requested_by_id)
    return kinds.Outcome(result_id=funding.id)


def subject_url(request) -> str:
    return url_for("chain.project_chain", project_id=request.project_id)


kinds.register(
    kinds.Kind(
        name=KIND,
        permission="funding.approve",
        label=_l("Funding"),
        describe=describe,
        execute=execute,
        subject_url=subject_url,
    )
)


def ask(project: Project, amount: int, note: str, user_id: int):
    """Ask for ``amount`` base units to be minted into the project; refused now (rather than at
    approval) when it could not be done at all."""
    pc = setup.state(project.id)
    if pc is None or pc.status != DEPLOYED:
        raise Conflict(_("Set up the project's payments before funding it."))
    if project.is_closed:
        raise Conflict(_("A closed project cannot be funded."))
    amounts.check(amount, pc.decimals)
    if pc.funded + setup.pending_funding(project.id) + amount > amounts.COLUMN_MAX:
        raise amounts.AmountError(_("That would take the project's funding past what it can hold."))
    return approvals.ask(
        KIND, project, subject_id=project.id, amount=amount, note=note, user_id=user_id
    )

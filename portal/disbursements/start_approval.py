"""Starting a disbursement waits for a second person's approval.

The start button asks; ``services.start`` (the funds check under the project's lock, the batch
jobs) is run by the final approval in its transaction, as the person who asked.
"""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.approvals import kinds
from portal.approvals import services as approvals
from portal.chain import setup
from portal.disbursements import services
from portal.disbursements.models import DRAFT, Disbursement
from portal.errors import Conflict
from portal.extensions import db
from portal.i18n.formatting import number
from portal.ledger import display
from portal.projects import services as projects
from portal.projects.models import Project

KIND = "disbursement_start"


def describe(request) -> str:
    d = db.session.get(Disbursement, request.subject_id)
    project = db.session.get(Project, request.project_id)
    pc = setup.state(request.project_id)
    if d is None or pc is None:
        return _("Start disbursement %(id)s", id=request.subject_id)
    each = display.money(d.amount_each, pc)
    total = display.money(request.amount, pc)
    return _(
        "Start “%(title)s” in %(project)s: %(num)s people × %(each)s = %(total)s",
        title=d.title,
        project=project.name,
        num=number(d.beneficiaries),
        each=each,
        total=total,
    )


def execute(request, approver_id: int) -> kinds.Outcome:
    d = db.session.get(Disbursement, request.subject_id)
    services.start(d, request.requested_by_id)
    return kinds.Outcome(result_id=d.id)


def subject_url(request) -> str:
    return url_for("disbursements.show", disbursement_id=request.subject_id)


kinds.register(
    kinds.Kind(
        name=KIND,
        permission="disbursement.approve",
        label=_l("Start of a disbursement"),
        describe=describe,
        execute=execute,
        subject_url=subject_url,
        one_open_per_subject=True,
    )
)


def ask(disbursement: Disbursement, user_id: int):
    """Ask for the draft to be started; refused now when it could not start at all."""
    if disbursement.status != DRAFT:
        raise Conflict(_("This disbursement has already been started."))
    project = db.session.get(Project, disbursement.project_id)
    projects.ensure_writable(project)
    services.ensure_covered(disbursement, project)
    return approvals.ask(
        KIND,
        project,
        subject_id=disbursement.id,
        amount=disbursement.total,
        note=disbursement.title,
        user_id=user_id,
    )

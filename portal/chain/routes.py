"""A project's contracts (deploy, fund) and its Transactions page, live."""

from __future__ import annotations

import json
import logging

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from portal import confirmation, inputs, realtime
from portal.accounts.guards import permission_required
from portal.beneficiaries import services as beneficiaries
from portal.chain import (
    addresses,
    alerts,
    funding_approval,
    guardian,
    setup,
    signers,
    treasury,
    txmanager,
    wallets,
)
from portal.chain import caps as chain_caps
from portal.chain import vendors as chain_vendors
from portal.chain.forms import (
    CapsForm,
    DeployForm,
    FundForm,
    LedgerCheckForm,
    PauseForm,
    WalletForm,
)
from portal.chain.models import DEPLOYED, TX_STATUSES, ChainTx, Funding
from portal.disbursements import services as disbursements
from portal.errors import DomainError, NotFound, ValidationFailed
from portal.extensions import db
from portal.jobs import attention, dispatch
from portal.jobs.kinds import CHAIN_LEDGER_VERIFY
from portal.jobs.models import Job
from portal.ledger import display, labels
from portal.money import amounts
from portal.projects import services as projects
from portal.transactions import attempt

log = logging.getLogger(__name__)
bp = Blueprint("chain", __name__, url_prefix="/projects/<int:project_id>")

# After new spending limits are sent: a whole sentence per action, so each language words it.
CAPS_SENT = {
    "allocate": _l("New allocate limits sent; the table shows them once confirmed."),
    "redeem": _l("New redeem limits sent; the table shows them once confirmed."),
    "settle": _l("New settle limits sent; the table shows them once confirmed."),
}


def _apply_field_errors(form, exc: ValidationFailed) -> None:
    for name, message in exc.fields.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, message]
        else:
            flash(message, "error")


def _page(
    project,
    deploy_form=None,
    fund_form=None,
    status=200,
    *,
    pause_form=None,
    caps_form=None,
    unsigned=None,
):
    pc = setup.state(project.id)
    if deploy_form is None:
        deploy_form = DeployForm(symbol=f"P{project.id}AID")
    fund_form = fund_form or _fund_form(pc)
    fundings = db.session.scalars(
        select(Funding)
        .where(Funding.project_id == project.id)
        .order_by(Funding.id.desc())
        .limit(20)
    ).all()
    money, caps_found, awaiting, on_chain, to_sign = None, {}, [], None, None
    if pc is not None and pc.status == DEPLOYED and pc.version >= 2:
        on_chain = guardian.paused_on_chain(pc)
        to_sign = guardian.prepared(pc)
        try:
            caps_found = chain_caps.read(project.id)
        except Exception:  # a page without the caps table is better than no page
            log.warning("could not read the caps of project %s", project.id, exc_info=True)
        awaiting = [
            {"funding": f, "tx": treasury.prepared_mint(f)} for f in treasury.awaiting(project.id)
        ]
    if pc is not None:
        committed = disbursements.committed_total(project.id)
        money = {
            "funded": pc.funded,
            "committed": committed,
            "available": disbursements.available(project.id, committed),
            "pending_funding": setup.pending_funding(project.id),
        }
    return (
        render_template(
            "chain/project.html",
            project=project,
            pc=pc,
            money=money,
            fundings=fundings,
            deploy_form=deploy_form,
            fund_form=fund_form,
            caps=caps_found,
            awaiting=awaiting,
            pause_form=pause_form or PauseForm(formdata=None),
            caps_form=caps_form or _caps_form(pc, formdata=None),
            paused_on_chain=on_chain,
            pause_to_sign=to_sign,
            unsigned=unsigned,
            multisig=signers.multisig(),
        ),
        status,
    )


def _caps_form(pc, **kwargs) -> CapsForm:
    form = CapsForm(**kwargs)
    decimals = pc.decimals if pc is not None and pc.status == DEPLOYED else None
    form.per_tx.use(decimals)
    form.per_day.use(decimals)
    return form


def _fund_form(pc) -> FundForm:
    form = FundForm()
    form.amount.use(pc.decimals if pc is not None and pc.status == DEPLOYED else None)
    if form.amount.decimals is not None:
        form.amount.description = _(
            "In %(currency)s. %(hint)s",
            currency=display.currency(pc),
            hint=amounts.hint(pc.decimals),
        )
    return form


@bp.get("/chain")
@permission_required("chain.read")
def project_chain(project_id: int):
    return _page(projects.get_visible(current_user, project_id))


def _submit(project, form, form_name: str, start, done_message: str):
    """Validate ``form``, call ``start(form)``; re-render with field errors or redirect."""
    if not form.validate_on_submit():
        return _page(project, **{form_name: form}, status=422)
    try:
        with attempt():
            start(form)
    except ValidationFailed as exc:
        _apply_field_errors(form, exc)
        return _page(project, **{form_name: form}, status=422)
    flash(done_message)
    return redirect(url_for("chain.project_chain", project_id=project.id))


@bp.post("/chain/deploy")
@permission_required("chain.manage")
def deploy(project_id: int):
    project = projects.get_visible(current_user, project_id)
    return _submit(
        project,
        DeployForm(),
        "deploy_form",
        lambda f: setup.start_deploy(project, f.symbol.data, f.decimals.data, current_user.id),
        _("Setting up payments for this project. This page updates by itself."),
    )


@bp.post("/chain/fund")
@permission_required("chain.manage")
def fund(project_id: int):
    project = projects.get_visible(current_user, project_id)
    pc = setup.state(project.id)
    form = _fund_form(pc)
    if form.validate_on_submit() and not confirmation.given():
        how_much = amounts.money(form.amount.data, pc.decimals, project.currency)
        return confirmation.page(
            _("Fund %(project)s with %(amount)s?", project=project.name, amount=how_much),
            _(
                "Money put into a project stays in it: it can be allocated to people but not "
                "taken back from this page. Someone else approves before anything moves."
            ),
            yes=_("Ask to fund %(amount)s", amount=how_much),
            back=url_for("chain.project_chain", project_id=project.id),
        )
    return _submit(
        project,
        form,
        "fund_form",
        lambda f: funding_approval.ask(project, f.amount.data, f.note.data, current_user.id),
        _("Funding asked for: the money is added once someone else approves it (see below)."),
    )


@bp.app_template_global("project_paused")
def project_paused(project_id: int):
    """For the banner on a project's staff pages: its chain row when paused, else None."""
    return guardian.paused(project_id)


@bp.post("/chain/pause")
@permission_required("chain.pause")
def pause(project_id: int):
    return _guard(project_id, True)


@bp.post("/chain/resume")
@permission_required("chain.pause")
def resume(project_id: int):
    return _guard(project_id, False)


def _guard(project_id: int, stop: bool):
    """The guardian pauses or resumes the project's value moves (with a reason, confirmed)."""
    project = projects.get_visible(current_user, project_id)
    form = PauseForm()
    if not form.validate_on_submit():
        return _page(project, pause_form=form, status=422)
    try:
        with attempt():
            sent = guardian.set_paused(project, stop, form.reason.data)
    except DomainError as exc:
        form.reason.errors = [*form.reason.errors, str(exc)]
        return _page(project, pause_form=form, status=exc.status)
    if isinstance(sent, dict):
        flash(
            _(
                "Payments paused in the portal. The treasury needs several signatures: its "
                "signers must confirm it as well (see below)."
            )
            if stop
            else _(
                "Payments resumed in the portal. The treasury needs several signatures: its "
                "signers must confirm it as well (see below)."
            )
        )
    elif sent:
        flash(
            _("Payments paused. The payment network is told.")
            if stop
            else _("Payments resumed. The payment network is told.")
        )
    else:
        flash(_("Payments paused.") if stop else _("Payments resumed."))
    return redirect(url_for("chain.project_chain", project_id=project.id))


@bp.post("/chain/caps")
@permission_required("chain.caps")
def set_caps(project_id: int):
    """The operator's limits, signed by the treasury (or prepared for a multisig's signers)."""
    project = projects.get_visible(current_user, project_id)
    form = _caps_form(setup.state(project.id))
    if not form.validate_on_submit():
        return _page(project, caps_form=form, status=422)
    try:
        with attempt():
            sent = chain_caps.set_caps_units(
                project.id, form.action.data, form.per_tx.data, form.per_day.data
            )
    except chain_caps.CapsError as exc:
        form.per_day.errors = [*form.per_day.errors, str(exc)]
        return _page(project, caps_form=form, status=422)
    if isinstance(sent, dict):
        what = _("%(action)s limits", action=labels.label("cap", form.action.data))
        return _page(project, unsigned={"what": what, **sent})
    flash(str(CAPS_SENT[form.action.data]))
    return redirect(url_for("chain.project_chain", project_id=project.id))


@bp.get("/transactions")
@permission_required("chain.details.read")
def transactions(project_id: int):
    project = projects.get_visible(current_user, project_id)
    status = inputs.choice_arg("status", (*TX_STATUSES, "stuck"))
    query = select(ChainTx).where(ChainTx.project_id == project.id)
    if status == "stuck":  # open and not mined for longer than CHAIN_STUCK_SECONDS
        query = attention.stuck_transactions([project.id])
    elif status:
        query = query.where(ChainTx.status == status)
    page = db.paginate(
        query.order_by(ChainTx.id.desc()), page=inputs.page_arg(), per_page=50, error_out=False
    )
    counts = dict(
        db.session.execute(
            select(ChainTx.status, func.count())
            .where(ChainTx.project_id == project.id)
            .group_by(ChainTx.status)
        ).all()
    )
    open_alerts = alerts.open_alerts(10)
    counts["stuck"] = db.session.scalar(
        select(func.count()).select_from(attention.stuck_transactions([project.id]).subquery())
    )
    return render_template(
        "chain/transactions.html",
        project=project,
        page=page,
        counts=counts,
        tx_is_stuck=attention.tx_is_stuck,
        status=status,
        statuses=(*TX_STATUSES, "stuck"),
        chain_alerts=open_alerts,
        alert_vendors=chain_vendors.alert_vendors(open_alerts),
    )


@bp.post("/transactions/<int:tx_id>/follow-up")
@permission_required("chain.manage")
def follow_up(project_id: int, tx_id: int):
    """A transaction not mined for long: make sure a follow-up job is driving it."""
    project = projects.get_visible(current_user, project_id)
    tx = db.session.get(ChainTx, tx_id)
    if tx is None or tx.project_id != project.id:
        raise NotFound(_("No such transaction in this project."))
    job = attention.follow_up_stuck_tx(tx)
    if job is None:
        flash(_("A follow-up is already working on transaction %(id)s.", id=tx.id))
    else:
        flash(
            _(
                "Transaction %(id)s is checked again by job %(job)s; it is re-sent if needed.",
                id=tx.id,
                job=job.id,
            )
        )
    return redirect(url_for("chain.transactions", project_id=project.id, status="stuck"))


@bp.post("/alerts/<int:alert_id>/resolve")
@permission_required("chain.manage")
def resolve_alert(project_id: int, alert_id: int):
    """Staff looked into a chain alert (a deep rollback, a nonce gap, a fee ceiling): close it.
    The repair itself is automatic; this only takes the flag down, and is audited."""
    project = projects.get_visible(current_user, project_id)
    if alerts.resolve(alert_id):
        flash(_("Alert %(id)s is marked resolved.", id=alert_id))
    else:
        flash(_("Alert %(id)s was already resolved.", id=alert_id))
    return redirect(url_for("chain.transactions", project_id=project.id))


@bp.post("/chain/vendors/<int:vendor_id>/retry")
@permission_required("chain.manage")
def retry_vendor(project_id: int, vendor_id: int):
    """A vendor's registration was given up (the chain kept refusing it): try again."""
    project = projects.get_visible(current_user, project_id)
    if chain_vendors.retry(project.id, vendor_id):
        flash(_("Vendor %(id)s's registration is tried again; its alert is closed.", id=vendor_id))
    else:
        flash(_("Vendor %(id)s's registration was not waiting for a retry.", id=vendor_id))
    return redirect(url_for("chain.transactions", project_id=project.id))


@bp.get("/transactions/<int:tx_id>")
@permission_required("chain.details.read")
def transaction(project_id: int, tx_id: int):
    project = projects.get_visible(current_user, project_id)
    tx = db.session.get(ChainTx, tx_id)
    if tx is None or tx.project_id != project.id:
        raise NotFound(_("No such transaction in this project."))
    return render_template("chain/transaction.html", project=project, tx=tx)


@realtime.topic("transactions", "chain.read")
def transactions_topic(user, params: dict):
    project = projects.get_visible(user, realtime.id_param(params, "project_id"))
    pc = setup.state(project.id)
    return [txmanager.transactions_room(project.id), realtime.project_room(project.id)], {
        "chain": setup.serialize(pc) if pc else None
    }


wallet_bp = Blueprint("wallets", __name__, url_prefix="/beneficiaries/<int:beneficiary_id>")


@wallet_bp.app_template_global("wallet_of")
def wallet_for_page(person):
    """The beneficiary page's wallet panel (only for those who may manage beneficiaries)."""
    return wallets.wallet_of(person.id)


@wallet_bp.app_template_global("vendor_chain_address")
def vendor_chain_address(vendor_id: int) -> str:
    """For the vendor page's on-chain details (derived, so no query)."""
    return addresses.vendor_address(vendor_id)


@wallet_bp.post("/wallet")
@permission_required("beneficiary.manage")
def set_wallet(beneficiary_id: int):
    person = beneficiaries.get_visible(current_user, beneficiary_id)
    form = WalletForm()
    if form.validate_on_submit():
        try:
            with attempt():
                found = wallets.set_wallet(person, form.address.data)
        except ValidationFailed as exc:
            flash(exc.fields["address"], "error")
        else:
            flash(_("Wallet address saved.") if found else _("Wallet address removed."), "success")
    else:
        flash(_("The form expired; try again."), "error")
    return redirect(url_for("beneficiaries.show", beneficiary_id=person.id) + "#wallet")


@bp.get("/chain/ledger")
@permission_required("chain.read")
def ledger(project_id: int):
    project = projects.get_visible(current_user, project_id)
    job = db.session.scalar(
        select(Job)
        .where(Job.project_id == project.id, Job.kind == CHAIN_LEDGER_VERIFY.name)
        .order_by(Job.id.desc())
        .limit(1)
    )
    result = json.loads(job.result_json) if job is not None and job.result_json else None
    return render_template(
        "chain/ledger.html",
        project=project,
        pc=setup.state(project.id),
        job=job,
        result=result,
        form=LedgerCheckForm(),
    )


@bp.post("/chain/ledger")
@permission_required("chain.read")
def ledger_check(project_id: int):
    """Start a check; it reads the whole event log, so it runs as a job (reports queue)."""
    project = projects.get_visible(current_user, project_id)
    if LedgerCheckForm().validate_on_submit():
        dispatch.enqueue(
            CHAIN_LEDGER_VERIFY.name,
            {"project_id": project.id},
            project_id=project.id,
            created_by_id=current_user.id,
        )
        flash(_("Ledger check started: the result appears here when it is done."))
    return redirect(url_for("chain.ledger", project_id=project.id))

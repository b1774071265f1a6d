"""Vendor pages on the phone: sign in with an SMS code, home, charge, code entry, receipt.

Views parse the form and render; ``portal.vendor_portal.signin`` and
``portal.redemptions.services`` do the work. Every page but sign-in needs a vendor session.

GETs change no domain state (a code past its expiry reads as expired; the sweeper writes it).
Limits are keyed on the thing attacked (``portal.quotas``: per payer, per vendor, per vendor
phone number) or, for the anonymous sign-in pages, on the address; never on a session.
"""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from wtforms.validators import StopValidation

from portal import inputs, realtime, transactions, web
from portal.accounts.forms import EmptyForm
from portal.accounts.guards import public
from portal.chain import setup
from portal.errors import DomainError, NotFound, ValidationFailed
from portal.extensions import db, limiter
from portal.quotas import services as quotas
from portal.quotas.services import Throttled
from portal.redemptions import codes, ledger, payer_names
from portal.redemptions import live as redemption_live
from portal.redemptions import services as redemptions
from portal.redemptions.models import AWAITING, BY_CARD, IN_FLIGHT, SETTLED, effective_status
from portal.redirects import safe_next
from portal.vendor_portal import sessions, signin
from portal.vendor_portal.forms import ChargeForm, CodeForm, PhoneForm
from portal.vendor_portal.guards import vendor_required
from portal.vendor_portal.sessions import current_vendor

bp = Blueprint("vendor", __name__, url_prefix="/vendor")
SIGN_IN_KEY = "vsignin"
CHOOSE_PROJECT = _l("Choose one of your projects.")

TOO_MANY = _l("Too many tries for now. Try again %(when)s.")
OUTCOME_NOTES = {
    codes.LOCKED: _l("The code was entered wrong too many times and no longer works."),
    codes.EXPIRED: _l("The code has expired."),
    codes.USED: _l("This code was used already."),
}


# --- rate limits ------------------------------------------------------------------------------


def _limit(name: str):
    return lambda: current_app.config[name]


def _vendor_key() -> str:
    # The vendor, not the session: a new sign-in does not start a fresh count.
    vendor = current_vendor()
    return f"vendor:{vendor.id}" if vendor is not None else f"vendor-ip:{request.remote_addr}"


# --- errors inside vendor pages look like vendor pages ----------------------------------------


def _message(status: int, title: str, message: str):
    return render_template("vendor/message.html", title=title, message=message), status


@bp.errorhandler(CSRFError)
def _csrf_error(exc):
    return _message(
        400, _("Please try again"), _("The page was open too long. Go back and reload it.")
    )


@bp.errorhandler(DomainError)
def _domain_error(exc):
    if isinstance(exc, Throttled):
        return _throttled(exc)
    if web.wants_json():
        return web.problem(exc.status, str(exc))
    return _message(exc.status, _("That did not work"), str(exc))


def _throttled(exc: Throttled):
    """A limit said no: the page (or problem body) says when, and so does Retry-After."""
    if web.wants_json():
        body, status, headers = web.problem(429, str(exc))
    else:
        body, status = _message(429, _("Please wait"), str(exc))
        headers = {}
    return body, status, {**headers, "Retry-After": str(exc.retry_after)}


@bp.errorhandler(HTTPException)
def _http_error(exc):
    if exc.code == 429:
        # Flask-Limiter (per address, or per vendor for codes typed): say when, as quotas do.
        breached = [lim for lim in limiter.current_limits if lim.breached]
        if breached:
            wait = max(int(max(lim.reset_at for lim in breached) - time.time()), 1)
            return _message(429, _("Please wait"), TOO_MANY % {"when": quotas.when(wait)})
        return _message(429, _("Please wait"), TOO_MANY % {"when": _("in a few minutes")})
    return _message(exc.code or 500, _("That did not work"), exc.description or "")


def _field_errors(form, exc: ValidationFailed, fallback: str) -> None:
    for name, message in exc.fields.items():
        getattr(form, name, getattr(form, fallback)).errors.append(message)


# --- sign-in ----------------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    return safe_next(target, url_for("vendor.home"), under="/vendor")


@bp.route("/sign-in", methods=["GET", "POST"])
@public
@limiter.limit(_limit("VENDOR_CODE_IP_LIMIT"), methods=["POST"])
def sign_in():
    if current_vendor() is not None:
        return redirect(url_for("vendor.home"))
    form = PhoneForm()
    if form.validate_on_submit():
        try:
            with transactions.attempt():
                attempt = signin.request_code(form.phone.data)
        except ValidationFailed as exc:
            _field_errors(form, exc, "phone")
        else:
            session[SIGN_IN_KEY] = attempt.id
            session["vsignin_next"] = _safe_next(request.args.get("next"))
            return redirect(url_for("vendor.sign_in_code"))
    return render_template("vendor/sign_in.html", form=form)


@bp.route("/sign-in/code", methods=["GET", "POST"])
@public
@limiter.limit(_limit("VENDOR_CODE_ENTRY_LIMIT"), methods=["POST"])
def sign_in_code():
    attempt_id = session.get(SIGN_IN_KEY)
    if not attempt_id:
        return redirect(url_for("vendor.sign_in"))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            with transactions.attempt():
                check, vendor = signin.verify(attempt_id, form.code.data)
        except ValidationFailed as exc:
            _field_errors(form, exc, "code")
        else:
            if check.ok:
                sessions.start(vendor)
                session.pop(SIGN_IN_KEY, None)
                return redirect(_safe_next(session.pop("vsignin_next", None)))
            if check.outcome == codes.WRONG:
                form.code.errors.append(_wrong(check.tries_left))
            else:
                session.pop(SIGN_IN_KEY, None)
                flash(
                    _(
                        "%(why)s Ask for a new one.",
                        why=OUTCOME_NOTES.get(check.outcome, _("Start again.")),
                    ),
                    "error",
                )
                return redirect(url_for("vendor.sign_in"))
    form.code.data = ""
    return render_template("vendor/sign_in_code.html", form=form, resend_form=EmptyForm())


@bp.post("/sign-in/resend")
@public
@limiter.limit(_limit("VENDOR_CODE_IP_LIMIT"))
def sign_in_resend():
    attempt_id = session.get(SIGN_IN_KEY)
    if not attempt_id or not EmptyForm().validate_on_submit():
        return redirect(url_for("vendor.sign_in"))
    try:
        with transactions.attempt():
            signin.resend(attempt_id)
    except Throttled:
        raise
    except DomainError as exc:
        flash(str(exc), "error")
    else:
        flash(_("If the number is a vendor's, a new code is on its way."), "success")
    return redirect(url_for("vendor.sign_in_code"))


def _wrong(left: int) -> str:
    return ngettext(
        "That code is not right. %(num)s more try before it stops working.",
        "That code is not right. %(num)s more tries before it stops working.",
        left,
    )


@bp.post("/sign-out")
@vendor_required
def sign_out():
    if EmptyForm().validate_on_submit():
        sessions.end_current()  # its sockets close once this commits
        flash(_("You are signed out."), "info")
        return redirect(url_for("vendor.sign_in"))
    return redirect(url_for("vendor.home"))


# --- home, history ----------------------------------------------------------------------------


@bp.get("/")
@vendor_required
def home():
    vendor = current_vendor()
    # The database's ledger; the chain is read only when the vendor asks (?on_chain=1).
    on_chain = request.args.get("on_chain") == "1"
    return render_template(
        "vendor/home.html",
        vendor=vendor,
        on_chain=on_chain,
        balances=ledger.balances(vendor, with_chain=on_chain),
        recent=ledger.recent(vendor.id),
        projects=redemptions.chargeable_projects(vendor),
        label=redemption_live.label,
        tones=redemption_live.TONES,
        status_of=effective_status,
        money=_money_of(vendor),
        sign_out_form=EmptyForm(),
    )


@bp.get("/payments")
@vendor_required
def history():
    vendor = current_vendor()
    page = db.paginate(
        ledger.history(vendor.id),
        page=inputs.page_arg(),
        per_page=20,
        error_out=False,
    )
    return render_template(
        "vendor/history.html",
        vendor=vendor,
        page=page,
        label=redemption_live.label,
        tones=redemption_live.TONES,
        status_of=effective_status,
        money=_money_of(vendor),
    )


def _money_of(vendor):
    chains = {project.id: pc for project, pc in ledger.served_chains(vendor)}

    def money(redemption) -> str:
        return redemption_live.money(redemption.amount, chains.get(redemption.project_id))

    return money


# --- charging ---------------------------------------------------------------------------------


def _one_of(served: dict):
    def check(form, field):
        if field.data not in served:
            raise StopValidation(CHOOSE_PROJECT)

    return check


@bp.route("/charge", methods=["GET", "POST"])
@vendor_required
def charge():
    vendor = current_vendor()
    options = redemptions.chargeable_projects(vendor)
    form = ChargeForm()
    form.project_id.choices = [(project.id, project.name) for project, _ in options]
    if request.method == "GET":
        chosen = inputs.id_arg("project")
        form.project_id.data = chosen or (options[0][0].id if options else None)
    decimals = {project.id: pc.decimals for project, pc in options}
    # The amount is read in the chosen project's token; no project of theirs, no amount.
    form.amount.use(decimals.get(form.project_id.data), unknown=_("Choose the project first."))
    if options and form.validate_on_submit(extra_validators={"project_id": [_one_of(decimals)]}):
        try:
            with transactions.attempt():
                project, pc = redemptions.chargeable_project(vendor, form.project_id.data)
                payer = redemptions.find_payer(
                    project, card=form.card.data or "", phone=form.phone.data or ""
                )
                redemption = redemptions.start(
                    vendor,
                    project,
                    pc,
                    payer.person,
                    form.amount.data,
                    payer.method,
                    subject=payer.subject,
                )
        except ValidationFailed as exc:
            _field_errors(form, exc, "amount")
        except Throttled:
            raise
        except DomainError as exc:
            form.amount.errors.append(str(exc))
        else:
            return redirect(url_for("vendor.code", redemption_id=redemption.id))
    form.card.data = ""  # a card code is a credential: never echoed back
    symbols = {project.id: pc.symbol for project, pc in options}
    return render_template(
        "vendor/charge.html",
        form=form,
        options=options,
        decimals=decimals,
        symbols=symbols,
    )


def _payer_shown(redemption) -> str | None:
    """Who pays, as this vendor may see it: a masked name ("Gita M."), never the whole name or
    the phone. A scanned card shows its holder's at once (the card is in the vendor's hand);
    a typed number shows nothing until the code is accepted, so typing numbers never tells
    a vendor whose they are. Only ever called on a redemption of this vendor's."""
    if redemption.beneficiary_id is None:
        return None
    if redemption.confirmed_at is None and redemption.method != BY_CARD:
        return None
    person = ledger.person_of(redemption)
    return payer_names.mask(person.pii.name) if person is not None else None


def _state(redemption) -> dict:
    """What the receipt shows, for its page and the live updates of this vendor only."""
    return {**redemption_live.serialize(redemption), "payer": _payer_shown(redemption)}


def _code_page(vendor, redemption, form):
    return render_template(
        "vendor/code.html",
        redemption=redemption,
        form=form,
        payer=_payer_shown(redemption),
        amount=redemption_live.money(redemption.amount, setup.state(redemption.project_id)),
        resend_wait=codes.resend_wait(redemption),
        seconds_left=ledger.seconds_left(redemption),
        resend_form=EmptyForm(),
        cancel_form=EmptyForm(),
    )


@bp.route("/payments/<int:redemption_id>/code", methods=["GET", "POST"])
@vendor_required
@limiter.limit(
    _limit("VENDOR_CODE_ENTRY_LIMIT"),
    key_func=_vendor_key,
    methods=["POST"],
    scope="vendor-code",
)
def code(redemption_id: int):
    vendor = current_vendor()
    redemption = redemptions.get_for_vendor(vendor, redemption_id)
    if effective_status(redemption) != AWAITING:
        return redirect(url_for("vendor.receipt", redemption_id=redemption.id))
    form = CodeForm()
    if form.validate_on_submit():
        try:
            with transactions.attempt():
                result = redemptions.confirm(vendor, redemption.id, form.code.data)
        except ValidationFailed as exc:
            _field_errors(form, exc, "code")
        else:
            if result.ok:
                return redirect(url_for("vendor.receipt", redemption_id=redemption.id))
            if result.outcome == codes.WRONG:
                form.code.errors.append(_wrong(result.tries_left))
                redemption = result.redemption
            else:
                return redirect(url_for("vendor.receipt", redemption_id=redemption.id))
    form.code.data = ""
    return _code_page(vendor, redemption, form)


@bp.post("/payments/<int:redemption_id>/resend")
@vendor_required
def resend(redemption_id: int):
    vendor = current_vendor()
    if EmptyForm().validate_on_submit():
        try:
            with transactions.attempt():
                redemptions.resend(vendor, redemption_id)
        except Throttled:
            raise
        except DomainError as exc:
            flash(str(exc), "error")
        else:
            flash(
                _("If the payer can pay, a new code is on its way. The old one no longer works."),
                "success",
            )
    return redirect(url_for("vendor.code", redemption_id=redemption_id))


@bp.post("/payments/<int:redemption_id>/cancel")
@vendor_required
def cancel(redemption_id: int):
    vendor = current_vendor()
    if EmptyForm().validate_on_submit():
        if redemptions.cancel(vendor, redemption_id):
            flash(_("Cancelled. Nothing was taken."), "info")
        return redirect(url_for("vendor.receipt", redemption_id=redemption_id))
    return redirect(url_for("vendor.code", redemption_id=redemption_id))


@bp.get("/payments/<int:redemption_id>")
@vendor_required
def receipt(redemption_id: int):
    vendor = current_vendor()
    redemption = redemptions.get_for_vendor(vendor, redemption_id)
    pc = setup.state(redemption.project_id)
    paid = redemption.status in (*IN_FLIGHT, SETTLED) and redemption.remaining_after is not None
    return render_template(
        "vendor/receipt.html",
        vendor=vendor,
        redemption=redemption,
        state=_state(redemption),
        left=redemption_live.money(redemption.remaining_after, pc) if paid else None,
        project=ledger.project_of(redemption),
        tx_hash=ledger.tx_hash_of(redemption),
    )


@bp.get("/payments/<int:redemption_id>/state")
@vendor_required
def receipt_state(redemption_id: int):
    """The receipt's state now, read by its page after (re)joining and whenever an update may
    have been missed: the page ends right whatever order the updates arrive in."""
    redemption = redemptions.get_for_vendor(current_vendor(), redemption_id)
    return _state(redemption), 200, {"Cache-Control": "no-store"}


@realtime.vendor_topic("redemptions")
def redemptions_topic(vendor, params: dict):
    """The vendor's own redemptions; with an ``id``, the snapshot of that one."""
    snapshot: dict = {}
    if params.get("id") is not None:
        try:
            found = redemptions.get_for_vendor(vendor, realtime.id_param(params, "id"))
        except NotFound:
            raise LookupError("not this vendor's") from None
        snapshot["redemption"] = _state(found)
    return [realtime.vendor_room(vendor.id)], snapshot
